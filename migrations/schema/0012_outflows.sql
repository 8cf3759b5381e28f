-- Money that left the collecting account and that nothing explains (issue 15's follow-up):
-- an outgoing transfer in the bank feed that confirms no payout — a bank-app payout sent
-- twice, a wrong amount, a transfer nobody recorded. It waits for the admin
-- (`outflow = 'unexplained'`), who says what it was: `duplicate_payout` (the shop owes it
-- back, netted at its next release), `accounted` (already in the books: a refund recorded
-- or a payout marked paid by hand) or `written_off` (a loss). The first and the last post a
-- journal; `outflow_note` keeps the payout code or the admin's words.
ALTER TABLE bank_transactions ADD COLUMN outflow TEXT;
ALTER TABLE bank_transactions ADD COLUMN outflow_note TEXT;
UPDATE bank_transactions SET outflow = 'unexplained'
 WHERE amount_vnd < 0
   AND NOT EXISTS (SELECT 1 FROM payouts p WHERE p.bank_reference = bank_transactions.provider_txn_id);
