//! Arbitrary bytes and structured garbage at every parser that reads what strangers send
//! (issue 11): the VietQR parser, webhook bodies and signature checks, the CSV importer, the
//! search request and query planner. No panic; errors only. VietQR build → parse round trips.

use std::collections::HashMap;

use cholang::bankfeed::parse as webhooks;
use cholang::payments::signatures as sig;
use cholang::payments::vietqr;
use proptest::prelude::*;

fn settings() -> cholang::search::settings::SearchSettings {
    cholang::search::settings::SearchSettings::parse(include_str!(
        "../../search-config/products.json"
    ))
    .unwrap()
}

/// Text that looks like what the parsers expect: TLV digits, headers, JSON, Vietnamese.
fn garbage() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[0-9A-F]{0,120}",
        "(00|01|38|53|54|58|62|63)[0-9]{2}[A-Za-z0-9 .]{0,30}",
        "t=[0-9-]{0,14},v1=[0-9a-f]{0,70}(,v1=[0-9a-fx]{0,8})?",
        "[màntuyếghbđơư ,.\"'<>{}\\[\\]:-]{0,80}",
        "\\{\"[a-z_]{1,12}\":( ?[0-9.e+-]{1,20}|\"[^\"]{0,20}\"|null|true|\\[\\]|\\{\\})\\}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn vietqr_parser_never_panics(s in garbage()) {
        let _ = vietqr::parse(&s);
        let _ = vietqr::parse_tlv(&s);
        let _ = vietqr::fold_purpose(&s);
    }

    #[test]
    fn vietqr_round_trips(
        account in "[0-9A-Z]{1,19}",
        amount in proptest::option::of(1i64..=500_000_000),
        purpose in "[màntuyếghbđơư A-Za-z0-9.,]{0,60}",
        bill in proptest::option::of("[A-Z0-9]{1,20}"),
    ) {
        let purpose = vietqr::fold_purpose(&purpose);
        let qr = vietqr::TransferQr {
            bin: cholang::payments::banks::BankBin::parse("970436").unwrap(),
            account: account.clone(),
            amount: amount.map(|a| cholang::domain::Vnd::new(a).unwrap()),
            bill_number: bill.clone(),
            purpose: (!purpose.is_empty()).then(|| purpose.clone()),
        };
        let payload = qr.payload().unwrap();
        let parsed = vietqr::parse(&payload).unwrap();
        prop_assert_eq!(parsed.bin, "970436");
        prop_assert_eq!(parsed.account, account);
        prop_assert_eq!(parsed.amount, amount);
        prop_assert_eq!(parsed.dynamic, amount.is_some());
        prop_assert_eq!(parsed.bill_number, bill);
        prop_assert_eq!(parsed.purpose.unwrap_or_default(), purpose);
        // One character changed anywhere: refused (the CRC), never a panic.
        let mut broken = payload.clone().into_bytes();
        let i = payload.len() / 2;
        broken[i] = if broken[i] == b'1' { b'2' } else { b'1' };
        prop_assert!(vietqr::parse(&String::from_utf8(broken).unwrap()).is_err());
    }

    #[test]
    fn webhook_bodies_and_signatures_never_panic(
        body in garbage(),
        bytes in proptest::collection::vec(any::<u8>(), 0..200),
        header in proptest::option::of(garbage()),
        now in any::<i64>(),
    ) {
        let h = header.as_deref();
        for raw in [body.as_bytes(), bytes.as_slice()] {
            prop_assert!(sig::verify_bank("secret", h, raw, now).is_err());
            prop_assert!(sig::verify_stripe("whsec", h, raw, now).is_err());
            prop_assert!(sig::verify_casso("key", h, raw, Some(now)).is_err());
            prop_assert!(sig::verify_payos("key", raw).is_err());
            if let Ok(v) = serde_json::from_slice::<serde_json::Value>(raw) {
                let text = String::from_utf8_lossy(raw);
                let _ = webhooks::from_bank(&v, &text);
                let _ = webhooks::from_casso(&v, &text);
                let _ = webhooks::from_payos(&v, &v["data"], &text);
                let _ = webhooks::from_stripe(&v, &text);
            }
        }
    }

    #[test]
    fn structured_webhook_garbage_is_an_error_not_a_panic(
        id in proptest::option::of(garbage()),
        amount in prop_oneof![Just(serde_json::Value::Null), any::<i64>().prop_map(serde_json::Value::from), any::<f64>().prop_map(serde_json::Value::from), garbage().prop_map(serde_json::Value::from)],
        description in proptest::option::of(garbage()),
    ) {
        let v = serde_json::json!({"id": id, "amount": amount, "description": description,
            "data": {"orderCode": amount, "amount": amount, "description": description, "reference": id},
            "type": "checkout.session.completed", "account_number": id});
        let raw = v.to_string();
        let _ = webhooks::from_bank(&v, &raw);
        let _ = webhooks::from_casso(&v, &raw);
        let _ = webhooks::from_payos(&v, &v["data"], &raw);
        let _ = webhooks::from_stripe(&v, &raw);
    }

    #[test]
    fn csv_importer_never_panics(
        bytes in proptest::collection::vec(any::<u8>(), 0..400),
        rows in proptest::collection::vec(garbage(), 0..4),
    ) {
        let _ = cholang::import::parse_csv(bytes.as_slice());
        let file = format!(
            "village,commune,district,shop,shop_phone,shop_email,product,description,category,price_vnd,unit,stock,ocop_stars\n{}",
            rows.join("\n")
        );
        let _ = cholang::import::parse_csv(file.as_bytes());
    }

    #[test]
    fn search_requests_and_plans_never_panic(
        q in garbage(),
        params in proptest::collection::hash_map(
            prop_oneof![Just("q"), Just("page"), Just("per_page"), Just("sort"), Just("village"),
                Just("category"), Just("ocop_min"), Just("price_min"), Just("price_max"), Just("in_stock")],
            garbage(),
            0..6,
        ),
    ) {
        let s = settings();
        let _ = cholang::search::Plan::groups(&q, &s);
        let map: HashMap<String, String> = params.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        if let Ok(req) = cholang::search::SearchRequest::parse(&map) {
            let _ = cholang::search::Plan::groups(&req.q, &s);
        }
    }
}
