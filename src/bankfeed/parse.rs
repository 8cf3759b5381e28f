//! Turning each provider's (already verified) webhook body into an `Incoming` transaction.

use serde_json::Value;

use super::{Hint, Incoming, Provider};

fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn int(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// A transfer amount: a whole number of đồng within ±`MAX_VND` (no real transfer comes
/// near it), so sums can never overflow.
fn amount(v: &Value, field: &str) -> Result<i64, BodyError> {
    match int(v) {
        Some(a) if a.abs() <= crate::domain::money::MAX_VND => Ok(a),
        Some(_) => Err(BodyError(format!("{field} is out of range"))),
        None => Err(BodyError(format!("{field} must be an integer (VND)"))),
    }
}

#[derive(Debug, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct BodyError(pub String);

/// Our own documented bank-feed format:
/// `{id, amount, description, account_number, transaction_time, reference}`.
pub fn from_bank(v: &Value, raw: &str) -> Result<Incoming, BodyError> {
    Ok(Incoming {
        provider: Provider::Bank,
        txn_id: text(&v["id"]).ok_or_else(|| BodyError("id is required".into()))?,
        amount: amount(&v["amount"], "amount")?,
        description: v["description"].as_str().unwrap_or("").to_string(),
        account_number: text(&v["account_number"]),
        reference: text(&v["reference"]),
        time: text(&v["transaction_time"]),
        raw: raw.to_string(),
        hint: None,
        success: true,
    })
}

/// Casso webhook v2: `{error, data: {id, reference, description, amount, …}}`.
pub fn from_casso(v: &Value, raw: &str) -> Result<Incoming, BodyError> {
    let d = &v["data"];
    if !d.is_object() {
        return Err(BodyError("data must be an object".into()));
    }
    Ok(Incoming {
        provider: Provider::Casso,
        txn_id: text(&d["id"]).ok_or_else(|| BodyError("data.id is required".into()))?,
        amount: amount(&d["amount"], "data.amount")?,
        description: d["description"].as_str().unwrap_or("").to_string(),
        account_number: text(&d["accountNumber"]),
        reference: text(&d["reference"]),
        time: text(&d["transactionDateTime"]),
        raw: raw.to_string(),
        hint: None,
        success: v["error"].as_i64().unwrap_or(0) == 0,
    })
}

/// payOS: `data` of a verified webhook. One webhook per bank transaction, identified by
/// its bank reference (falling back to the payment link and order).
pub fn from_payos(top: &Value, data: &Value, raw: &str) -> Result<Incoming, BodyError> {
    let order_code =
        int(&data["orderCode"]).ok_or_else(|| BodyError("data.orderCode is required".into()))?;
    let reference = text(&data["reference"]);
    let txn_id = match &reference {
        Some(r) => r.clone(),
        None => format!(
            "{}:{}",
            text(&data["paymentLinkId"]).unwrap_or_default(),
            order_code
        ),
    };
    let ok = top["code"] == "00" && (data["code"].is_null() || data["code"] == "00");
    Ok(Incoming {
        provider: Provider::Payos,
        txn_id,
        amount: amount(&data["amount"], "data.amount")?,
        description: data["description"].as_str().unwrap_or("").to_string(),
        account_number: text(&data["accountNumber"]),
        reference,
        time: text(&data["transactionDateTime"]),
        raw: raw.to_string(),
        hint: Some(Hint::OrderCode(order_code)),
        success: ok,
    })
}

/// Stripe: only a completed, paid Checkout Session in VND is money in. Other events are
/// acknowledged and not stored (`Ok(None)`).
pub fn from_stripe(v: &Value, raw: &str) -> Result<Option<Incoming>, BodyError> {
    let kind = v["type"]
        .as_str()
        .ok_or_else(|| BodyError("type is required".into()))?;
    if !matches!(
        kind,
        "checkout.session.completed" | "checkout.session.async_payment_succeeded"
    ) {
        return Ok(None);
    }
    let s = &v["data"]["object"];
    if s["payment_status"] != "paid" {
        return Ok(None);
    }
    let code = s["client_reference_id"]
        .as_str()
        .or_else(|| s["metadata"]["payment_code"].as_str())
        .map(str::to_string);
    let currency_ok = s["currency"]
        .as_str()
        .map(|c| c.eq_ignore_ascii_case("vnd"))
        .unwrap_or(false);
    Ok(Some(Incoming {
        provider: Provider::Stripe,
        txn_id: text(&s["id"]).ok_or_else(|| BodyError("data.object.id is required".into()))?,
        amount: amount(&s["amount_total"], "amount_total")?,
        description: code.clone().unwrap_or_default(),
        account_number: None,
        reference: text(&s["payment_intent"]),
        time: text(&v["created"]),
        raw: raw.to_string(),
        hint: code.map(Hint::Code),
        // A session in another currency cannot be counted in đồng: kept, not matched.
        success: currency_ok,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn bank_body_needs_id_and_integer_amount() {
        let ok = json!({"id": 42, "amount": 180000, "description": "CL7K3QX9"});
        assert_eq!(from_bank(&ok, "").unwrap().txn_id, "42");
        assert!(from_bank(&json!({"amount": 1}), "").is_err());
        assert!(from_bank(&json!({"id": "a", "amount": 1.5}), "").is_err());
        assert!(
            from_bank(&json!({"id": "a", "amount": i64::MAX}), "").is_err(),
            "absurd amounts refused"
        );
        assert!(from_bank(&json!({"id": "a", "amount": -1_000_000_000_001_i64}), "").is_err());
    }

    #[test]
    fn stripe_ignores_other_events_and_unpaid_sessions() {
        assert_eq!(
            from_stripe(&json!({"type": "invoice.paid"}), "")
                .unwrap()
                .map(|i| i.txn_id),
            None
        );
        let unpaid = json!({"type": "checkout.session.completed", "data": {"object": {"id": "cs_1", "payment_status": "unpaid"}}});
        assert!(from_stripe(&unpaid, "").unwrap().is_none());
        let paid = json!({"type": "checkout.session.completed", "data": {"object": {"id": "cs_1", "payment_status": "paid",
            "client_reference_id": "CL7K3QX9", "amount_total": 180000, "currency": "vnd"}}});
        let i = from_stripe(&paid, "").unwrap().unwrap();
        assert_eq!(
            (i.amount, i.hint),
            (180000, Some(Hint::Code("CL7K3QX9".into())))
        );
        assert!(i.success);
    }
}
