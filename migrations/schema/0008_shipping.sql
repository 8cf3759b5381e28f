-- "Đã gửi hàng" may say which carrier took the parcel and its tracking code; the buyer sees
-- both on the order lookup page (issue 15).
ALTER TABLE orders ADD COLUMN carrier TEXT;
ALTER TABLE orders ADD COLUMN tracking_code TEXT;
