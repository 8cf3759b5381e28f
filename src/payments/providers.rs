//! Outgoing calls to payment providers: payOS payment links and Stripe Checkout Sessions.
//! Both base URLs are configurable, so tests point them at local servers.

use std::time::Duration;

use serde_json::{Value, json};

use super::signatures::{payos_request_signature, payos_sign};
use crate::config::{PayosConfig, StripeConfig};
use crate::orders::store::CheckoutView;

#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    #[error("payment provider unreachable: {0}")]
    Unreachable(String),
    #[error("payment provider refused: {0}")]
    Refused(String),
    #[error("payment provider answer has a bad signature")]
    BadSignature,
}

pub struct PayosLink {
    pub payment_link_id: String,
    pub checkout_url: String,
    pub qr_code: String,
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .build()
        .expect("http client")
}

/// What a payOS payment link is made of (all signed fields plus the expiry).
pub struct PayosLinkRequest<'a> {
    pub order_code: i64,
    pub amount: i64,
    pub description: &'a str,
    pub return_url: &'a str,
    pub cancel_url: &'a str,
    pub expires_at_secs: i64,
}

/// `POST /v2/payment-requests`, signed; the answer's `data` signature is checked as the
/// payOS SDKs do.
#[tracing::instrument(skip_all, fields(order_code = req.order_code))]
pub async fn payos_create_link(
    cfg: &PayosConfig,
    req: &PayosLinkRequest<'_>,
    checkout: &CheckoutView,
) -> Result<PayosLink, ProviderError> {
    let PayosLinkRequest {
        order_code,
        amount,
        description,
        return_url,
        cancel_url,
        expires_at_secs,
    } = *req;
    let signature = payos_request_signature(
        &cfg.checksum_key,
        amount,
        cancel_url,
        description,
        order_code,
        return_url,
    );
    let items: Vec<Value> = checkout
        .orders
        .iter()
        .flat_map(|o| o.lines.iter())
        .map(|l| json!({"name": l.name, "quantity": l.quantity, "price": l.unit_price_vnd}))
        .collect();
    let body = json!({
        "orderCode": order_code,
        "amount": amount,
        "description": description,
        "cancelUrl": cancel_url,
        "returnUrl": return_url,
        "expiredAt": expires_at_secs,
        "buyerName": checkout.buyer_name,
        "buyerPhone": checkout.buyer_phone,
        "items": items,
        "signature": signature,
    });
    let resp = http()
        .post(format!("{}/v2/payment-requests", cfg.api_url))
        .header("x-client-id", &cfg.client_id)
        .header("x-api-key", &cfg.api_key)
        .json(&body)
        .send()
        .await
        .map_err(|e| ProviderError::Unreachable(e.to_string()))?;
    let status = resp.status();
    let v: Value = resp
        .json()
        .await
        .map_err(|e| ProviderError::Refused(format!("HTTP {status}: {e}")))?;
    if v["code"] != "00" {
        return Err(ProviderError::Refused(format!(
            "{} {}",
            v["code"], v["desc"]
        )));
    }
    let data = &v["data"];
    let sig = v["signature"].as_str().unwrap_or("");
    if payos_sign(&cfg.checksum_key, data) != sig {
        return Err(ProviderError::BadSignature);
    }
    let s = |k: &str| {
        data[k]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| ProviderError::Refused(format!("missing {k}")))
    };
    Ok(PayosLink {
        payment_link_id: s("paymentLinkId")?,
        checkout_url: s("checkoutUrl")?,
        qr_code: s("qrCode")?,
    })
}

pub struct StripeSession {
    pub id: String,
    pub url: String,
}

/// A Checkout Session in VND (a zero-decimal currency: amounts are whole đồng).
#[tracing::instrument(skip_all, fields(payment = code))]
pub async fn stripe_create_session(
    cfg: &StripeConfig,
    code: &str,
    checkout: &CheckoutView,
    success_url: &str,
    cancel_url: &str,
) -> Result<StripeSession, ProviderError> {
    use stripe_checkout::checkout_session::{
        CreateCheckoutSession, CreateCheckoutSessionLineItems,
        CreateCheckoutSessionLineItemsPriceData, ProductData,
    };
    let client = stripe::ClientBuilder::new(cfg.secret_key.clone())
        .url(cfg.api_url.clone())
        .build()
        .map_err(|e| ProviderError::Unreachable(e.to_string()))?;
    let items: Vec<CreateCheckoutSessionLineItems> = checkout
        .orders
        .iter()
        .flat_map(|o| o.lines.iter())
        .map(|l| {
            let mut price =
                CreateCheckoutSessionLineItemsPriceData::new(stripe_types::Currency::VND);
            price.unit_amount = Some(l.unit_price_vnd);
            price.product_data = Some(ProductData::new(l.name.clone()));
            let mut item = CreateCheckoutSessionLineItems::new();
            item.price_data = Some(price);
            item.quantity = Some(l.quantity as u64);
            item
        })
        .collect();
    let session = CreateCheckoutSession::new()
        .mode(stripe_shared::CheckoutSessionMode::Payment)
        .client_reference_id(code)
        .metadata(
            [("payment_code".to_string(), code.to_string())]
                .into_iter()
                .collect::<std::collections::HashMap<_, _>>(),
        )
        .success_url(success_url)
        .cancel_url(cancel_url)
        .line_items(items)
        .send(&client)
        .await
        .map_err(|e| ProviderError::Refused(e.to_string()))?;
    Ok(StripeSession {
        id: session.id.as_str().to_string(),
        url: session
            .url
            .ok_or_else(|| ProviderError::Refused("session without url".into()))?,
    })
}
