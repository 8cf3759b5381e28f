//! Configuration from environment variables, optionally layered over a `cholang.toml` file.
//! Every key is listed in README.md with its default.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;

#[derive(Clone)]
pub struct Config {
    pub data_dir: PathBuf,
    pub database_url: String,
    pub addr: SocketAddr,
    /// `CHOLANG_METRICS_ADDR`: where `/metrics` listens (off when unset).
    pub metrics_addr: Option<SocketAddr>,
    pub public_url: String,
    /// Key for CSRF tokens; generated once into the data dir when not configured.
    pub secret_key: Vec<u8>,
    pub max_upload_bytes: usize,
    pub session_days: i64,
    pub login_max_failures: i64,
    pub login_window_minutes: i64,
    /// How often housekeeping checks the ledger's invariants (`LEDGER_CHECK_SECS`, 300).
    pub ledger_check_secs: u64,
    /// Reverse proxies whose `X-Forwarded-For` is believed (`CHOLANG_TRUSTED_PROXIES`).
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// Open unpaid checkouts allowed per phone number and per client address.
    /// Requests per client address on register, checkout, order look-ups and webhooks.
    pub rates: crate::limits::rate::Rates,
    /// Run the housekeeping task (expiry, releases, payout follow-ups…) inside `serve`
    /// (`HOUSEKEEPING=off` when only `cholang worker`s should).
    pub housekeeping_in_serve: bool,
    /// How long an anonymous visitor's public page is kept (`web::page_cache`); 0: never.
    pub page_cache_ms: u64,
    /// How many products' page data, and search hits' cards and texts, are kept until they
    /// change (`web::product_cache`, `search::KeptHits`), of each; 0: none.
    pub product_cache_entries: usize,
    pub checkout_max_open: i64,
    /// Units held by open unpaid checkouts allowed per phone number and per client address.
    pub checkout_max_held_units: i64,
    pub payments: PaymentsConfig,
    pub payouts: PayoutsConfig,
    pub protection: ProtectionConfig,
    /// The price board's rules over time (`PRICE_BAND_DAYS`, `PRICE_MIN_STEP`).
    pub board: BoardRules,
    pub notify: NotifyConfig,
    pub search: SearchConfig,
    pub carriers: CarriersConfig,
}

/// The platform's accounts with the carriers (GHN, GHTK) and their webhook secrets.
#[derive(Clone, Default)]
pub struct CarriersConfig {
    /// `GHN_TOKEN`, `GHN_SHOP_ID`, `GHN_API_URL` (default GHN's production gateway).
    pub ghn: Option<GhnConfig>,
    /// `GHTK_TOKEN`, `GHTK_PARTNER_CODE`, `GHTK_API_URL`.
    pub ghtk: Option<GhtkConfig>,
    /// `GHN_WEBHOOK_SECRET`: the secret path segment of the URL registered with GHN.
    pub ghn_webhook_secret: Option<String>,
    /// `GHTK_WEBHOOK_HASH`: the `hash` in the URL registered with GHTK.
    pub ghtk_webhook_hash: Option<String>,
    /// How long a checkout waits for a carrier's quote (`SHIPPING_QUOTE_TIMEOUT_MS`, 3000).
    pub quote_timeout_ms: u64,
    /// The carriers' APIs (`GHN_API_URL`, `GHTK_API_URL`), for the platform's accounts and
    /// the shops' own.
    pub ghn_api_url: String,
    pub ghtk_api_url: String,
}

pub const GHN_DEFAULT_URL: &str = "https://online-gateway.ghn.vn";
pub const GHTK_DEFAULT_URL: &str = "https://services.giaohangtietkiem.vn";

#[derive(Clone)]
pub struct GhnConfig {
    pub token: String,
    pub shop_id: i64,
    pub api_url: String,
}

#[derive(Clone)]
pub struct GhtkConfig {
    pub token: String,
    pub partner_code: String,
    pub api_url: String,
}

impl CarriersConfig {
    fn load(s: &Settings) -> anyhow::Result<CarriersConfig> {
        let ghn_api_url = s
            .get("GHN_API_URL")
            .unwrap_or(GHN_DEFAULT_URL)
            .trim_end_matches('/')
            .to_string();
        let ghtk_api_url = s
            .get("GHTK_API_URL")
            .unwrap_or(GHTK_DEFAULT_URL)
            .trim_end_matches('/')
            .to_string();
        let ghn = match (s.get("GHN_TOKEN"), s.get("GHN_SHOP_ID")) {
            (Some(token), Some(shop)) if !token.is_empty() => Some(GhnConfig {
                token: token.to_string(),
                shop_id: shop
                    .trim()
                    .parse()
                    .map_err(|_| anyhow::anyhow!("GHN_SHOP_ID must be a number"))?,
                api_url: ghn_api_url.clone(),
            }),
            (Some(t), None) if !t.is_empty() => anyhow::bail!("GHN_TOKEN needs GHN_SHOP_ID"),
            _ => None,
        };
        let ghtk = match s.get("GHTK_TOKEN") {
            Some(token) if !token.is_empty() => Some(GhtkConfig {
                token: token.to_string(),
                partner_code: s.get("GHTK_PARTNER_CODE").unwrap_or("").to_string(),
                api_url: ghtk_api_url.clone(),
            }),
            _ => None,
        };
        let secret = |key: &str| -> anyhow::Result<Option<String>> {
            match s.get(key) {
                Some(v) if v.len() < 16 => anyhow::bail!("{key} must be at least 16 characters"),
                Some(v) => Ok(Some(v.to_string())),
                None => Ok(None),
            }
        };
        Ok(CarriersConfig {
            ghn,
            ghtk,
            ghn_webhook_secret: secret("GHN_WEBHOOK_SECRET")?,
            ghtk_webhook_hash: secret("GHTK_WEBHOOK_HASH")?,
            quote_timeout_ms: s.parse("SHIPPING_QUOTE_TIMEOUT_MS", 3_000)?,
            ghn_api_url,
            ghtk_api_url,
        })
    }
}

#[derive(Clone)]
pub struct ZaloConfig {
    pub zns_url: String,
    pub oauth_url: String,
    pub access_token: String,
    pub refresh_token: String,
    pub app_id: String,
    pub secret_key: String,
    pub template_order_paid: String,
}

/// The SMS brandname provider (eSMS.vn's JSON API), used when Zalo cannot deliver a code.
#[derive(Clone)]
pub struct SmsConfig {
    /// `SMS_API_URL`: the provider's base URL (`https://rest.esms.vn`).
    pub api_url: String,
    pub api_key: String,
    pub api_secret: String,
    pub brandname: String,
}

/// Codes sent to phones: Zalo ZNS first (`ZALO_TEMPLATE_OTP`, with Zalo set up), then SMS.
/// With neither, codes are written beside the mail files (the demo).
#[derive(Clone, Default)]
pub struct PhoneCodesConfig {
    pub zalo_template: Option<String>,
    /// The template's parameter that carries the code (`ZALO_TEMPLATE_OTP_PARAM`, `otp`).
    pub zalo_param: String,
    pub sms: Option<SmsConfig>,
}

#[derive(Clone)]
pub struct TelegramConfig {
    pub api_url: String,
    pub bot_token: String,
}

/// Notices: a channel whose settings are absent is off.
#[derive(Clone)]
pub struct NotifyConfig {
    /// `smtp://…` / `smtps://…`; None: mail goes to `.eml` files under the data dir.
    pub smtp_url: Option<String>,
    pub mail_from: String,
    pub zalo: Option<ZaloConfig>,
    pub telegram: Option<TelegramConfig>,
    pub phone_codes: PhoneCodesConfig,
    pub max_attempts: i64,
    pub backoff_base_secs: i64,
    /// How long a claimed notice is held before another worker may take it over (a worker
    /// that died with it in hand).
    pub lease_secs: i64,
    /// Run the worker inside `cholang serve` (off when a separate `cholang worker` runs).
    pub embedded_worker: bool,
}

impl NotifyConfig {
    fn load(s: &Settings) -> anyhow::Result<NotifyConfig> {
        let zalo = match (
            s.get("ZALO_ACCESS_TOKEN"),
            s.get("ZALO_TEMPLATE_ORDER_PAID"),
        ) {
            (Some(token), Some(template)) => Some(ZaloConfig {
                zns_url: s
                    .get("ZALO_ZNS_URL")
                    .unwrap_or("https://business.openapi.zalo.me")
                    .trim_end_matches('/')
                    .into(),
                oauth_url: s
                    .get("ZALO_OAUTH_URL")
                    .unwrap_or("https://oauth.zaloapp.com")
                    .trim_end_matches('/')
                    .into(),
                access_token: token.into(),
                refresh_token: s.get("ZALO_REFRESH_TOKEN").unwrap_or("").into(),
                app_id: s.get("ZALO_APP_ID").unwrap_or("").into(),
                secret_key: s.get("ZALO_SECRET_KEY").unwrap_or("").into(),
                template_order_paid: template.into(),
            }),
            _ => None,
        };
        let telegram = s.get("TELEGRAM_BOT_TOKEN").map(|t| TelegramConfig {
            api_url: s
                .get("TELEGRAM_API_URL")
                .unwrap_or("https://api.telegram.org")
                .trim_end_matches('/')
                .into(),
            bot_token: t.into(),
        });
        let sms = match (
            s.get("SMS_API_KEY"),
            s.get("SMS_API_SECRET"),
            s.get("SMS_BRANDNAME"),
        ) {
            (Some(key), Some(secret), Some(brand)) => Some(SmsConfig {
                api_url: s
                    .get("SMS_API_URL")
                    .unwrap_or("https://rest.esms.vn")
                    .trim_end_matches('/')
                    .into(),
                api_key: key.into(),
                api_secret: secret.into(),
                brandname: brand.into(),
            }),
            (None, None, None) => None,
            _ => anyhow::bail!("SMS needs SMS_API_KEY, SMS_API_SECRET and SMS_BRANDNAME together"),
        };
        let phone_codes = PhoneCodesConfig {
            zalo_template: s.get("ZALO_TEMPLATE_OTP").map(str::to_string),
            zalo_param: s.get("ZALO_TEMPLATE_OTP_PARAM").unwrap_or("otp").into(),
            sms,
        };
        Ok(NotifyConfig {
            phone_codes,
            smtp_url: s.get("SMTP_URL").map(str::to_string),
            mail_from: s
                .get("MAIL_FROM")
                .unwrap_or("Chợ Làng <no-reply@cholang.local>")
                .into(),
            zalo,
            telegram,
            max_attempts: s.parse("NOTIFY_MAX_ATTEMPTS", 8)?,
            backoff_base_secs: s.parse("NOTIFY_BACKOFF_SECS", 10)?,
            lease_secs: s.parse::<i64>("NOTIFY_LEASE_SECS", 60)?.max(1),
            embedded_worker: !matches!(s.get("NOTIFY_WORKER"), Some("off" | "0" | "false")),
        })
    }
}

/// Catalogue search: Meilisearch when `MEILI_URL` is set, else the embedded index.
#[derive(Clone, Debug)]
pub struct SearchConfig {
    pub meili_url: Option<String>,
    pub meili_key: Option<String>,
    pub meili_index: String,
    /// Bound on each Meilisearch request.
    pub meili_timeout_ms: u64,
    /// Where the embedded index lives.
    pub index_dir: PathBuf,
    /// Settings JSON read from `SEARCH_CONFIG`; `None`: the compiled-in
    /// `search-config/products.json`. Checked when the search opens (`search::Search::open`).
    pub settings_json: Option<String>,
    /// Run the search sync worker inside `serve` (default on).
    pub embedded_worker: bool,
    pub sync_interval_ms: u64,
    /// Answers the embedded index keeps until its next change (0: none).
    pub result_cache: usize,
}

impl SearchConfig {
    fn load(s: &Settings, data_dir: &std::path::Path) -> anyhow::Result<SearchConfig> {
        let settings_json = match s.get("SEARCH_CONFIG") {
            Some(p) => Some(
                std::fs::read_to_string(p).with_context(|| format!("reading SEARCH_CONFIG {p}"))?,
            ),
            None => None,
        };
        Ok(SearchConfig {
            meili_url: s
                .get("MEILI_URL")
                .filter(|u| !u.is_empty())
                .map(str::to_string),
            meili_key: s
                .get("MEILI_MASTER_KEY")
                .filter(|k| !k.is_empty())
                .map(str::to_string),
            meili_index: s.get("MEILI_INDEX").unwrap_or("products").to_string(),
            meili_timeout_ms: s.parse("MEILI_TIMEOUT_MS", 5000)?,
            index_dir: s
                .get("SEARCH_INDEX_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| data_dir.join("search")),
            settings_json,
            embedded_worker: !matches!(s.get("SEARCH_WORKER"), Some("off" | "0" | "false")),
            sync_interval_ms: s.parse("SEARCH_SYNC_INTERVAL_MS", 250)?,
            result_cache: s.parse("SEARCH_CACHE_ENTRIES", 512)?,
        })
    }
}

/// The bank account buyers transfer to (VietQR beneficiary).
#[derive(Clone, Debug)]
pub struct CollectAccount {
    pub bin: crate::domain::banks::BankBin,
    pub account_no: String,
    pub account_name: String,
    /// A made-up account for the demo market: pages warn not to transfer real money.
    pub demo: bool,
}

#[derive(Clone)]
pub struct PayosConfig {
    pub client_id: String,
    pub api_key: String,
    pub checksum_key: String,
    pub api_url: String,
}

#[derive(Clone)]
pub struct StripeConfig {
    pub secret_key: String,
    pub webhook_secret: Option<String>,
    pub api_url: String,
}

#[derive(Clone, Default)]
pub struct PaymentsConfig {
    pub collect: Option<CollectAccount>,
    pub expiry_minutes: i64,
    pub bank_webhook_secret: Option<String>,
    pub casso_checksum_key: Option<String>,
    pub payos: Option<PayosConfig>,
    pub stripe: Option<StripeConfig>,
}

/// Paying sellers: when money is released, the fee, the hold after a bank account change,
/// the smallest payout, and the payOS payout channel (its own three keys).
#[derive(Clone)]
pub struct PayoutsConfig {
    pub fee_bps: i64,
    pub account_hold_hours: i64,
    pub min_vnd: i64,
    pub payos: Option<PayosConfig>,
    /// Bound on each payOS Payouts request (`PAYOS_PAYOUT_TIMEOUT_MS`).
    pub payos_timeout_ms: u64,
    pub zalo_template_sent: Option<String>,
    /// Zalo ZNS template of the payout-account alert (`ZALO_TEMPLATE_PAYOUT_ACCOUNT`;
    /// parameters `bank`, `account_tail`, `from`).
    pub zalo_template_account: Option<String>,
    /// The days the treasurer makes a payout run (`PAYOUT_SCHEDULE`, default `mon`): the
    /// date sellers are promised.
    pub schedule: crate::domain::schedule::Schedule,
}

impl PayoutsConfig {
    fn load(s: &Settings) -> anyhow::Result<PayoutsConfig> {
        let fee_bps: i64 = s.parse("PLATFORM_FEE_BPS", 0)?;
        if !(0..=10_000).contains(&fee_bps) {
            anyhow::bail!("PLATFORM_FEE_BPS must be 0 to 10000");
        }
        let payos = match (
            s.get("PAYOS_PAYOUT_CLIENT_ID"),
            s.get("PAYOS_PAYOUT_API_KEY"),
            s.get("PAYOS_PAYOUT_CHECKSUM_KEY"),
        ) {
            (Some(id), Some(key), Some(sum)) => Some(PayosConfig {
                client_id: id.into(),
                api_key: key.into(),
                checksum_key: sum.into(),
                api_url: s
                    .get("PAYOS_PAYOUT_API_URL")
                    .unwrap_or("https://api-merchant.payos.vn")
                    .trim_end_matches('/')
                    .into(),
            }),
            (None, None, None) => None,
            _ => anyhow::bail!(
                "set all of PAYOS_PAYOUT_CLIENT_ID, PAYOS_PAYOUT_API_KEY and PAYOS_PAYOUT_CHECKSUM_KEY, or none"
            ),
        };
        Ok(PayoutsConfig {
            fee_bps,
            account_hold_hours: s.parse("PAYOUT_ACCOUNT_HOLD_HOURS", 24)?,
            min_vnd: s.parse("PAYOUT_MIN_VND", 50_000)?,
            payos,
            payos_timeout_ms: s.parse("PAYOS_PAYOUT_TIMEOUT_MS", 10_000)?,
            zalo_template_sent: s.get("ZALO_TEMPLATE_PAYOUT_SENT").map(str::to_string),
            zalo_template_account: s.get("ZALO_TEMPLATE_PAYOUT_ACCOUNT").map(str::to_string),
            schedule: match s.get("PAYOUT_SCHEDULE") {
                Some(v) => crate::domain::schedule::Schedule::parse(v)
                    .map_err(|e| anyhow::anyhow!("PAYOUT_SCHEDULE: {e}"))?,
                None => Default::default(),
            },
        })
    }
}

/// Buyer protection: when an order's money is released, how long a seller has to answer a
/// request, how long a return may take.
#[derive(Clone, Copy)]
pub struct ProtectionConfig {
    pub rules: ReleaseRules,
    pub dispute_seller_days: i64,
    pub return_days: i64,
}

impl ProtectionConfig {
    fn load(s: &Settings) -> anyhow::Result<ProtectionConfig> {
        if s.get("PAYOUT_RELEASE_DAYS").is_some() {
            tracing::warn!(
                "PAYOUT_RELEASE_DAYS is no longer read: set GUARANTEE_DAYS and SHIPPED_RELEASE_DAYS"
            );
        }
        let days = |key: &str, default: i64| -> anyhow::Result<i64> {
            let d: i64 = s.parse(key, default)?;
            if !(0..=60).contains(&d) {
                anyhow::bail!("{key} must be 0 to 60 days");
            }
            Ok(d)
        };
        Ok(ProtectionConfig {
            rules: ReleaseRules {
                guarantee_days: days("GUARANTEE_DAYS", 3)?,
                shipped_days: days("SHIPPED_RELEASE_DAYS", 10)?,
                extend_days: 3,
            },
            dispute_seller_days: days("DISPUTE_SELLER_DAYS", 3)?,
            return_days: days("RETURN_DAYS", 7)?,
        })
    }
}

impl PaymentsConfig {
    fn load(s: &Settings) -> anyhow::Result<PaymentsConfig> {
        let collect = match (
            s.get("COLLECT_BANK_BIN"),
            s.get("COLLECT_ACCOUNT_NO"),
            s.get("COLLECT_ACCOUNT_NAME"),
        ) {
            (Some(bin), Some(no), Some(name)) => {
                let bin = crate::domain::banks::BankBin::parse(bin)
                    .map_err(|e| anyhow::anyhow!("COLLECT_BANK_BIN: {e}"))?;
                if no.is_empty() || no.len() > 19 || !no.bytes().all(|b| b.is_ascii_alphanumeric())
                {
                    anyhow::bail!("COLLECT_ACCOUNT_NO must be 1 to 19 letters or digits");
                }
                Some(CollectAccount {
                    bin,
                    account_no: no.to_string(),
                    account_name: crate::domain::text::fold(name).to_uppercase(),
                    demo: false,
                })
            }
            (None, None, None) => None,
            _ => anyhow::bail!(
                "set all of COLLECT_BANK_BIN, COLLECT_ACCOUNT_NO and COLLECT_ACCOUNT_NAME, or none"
            ),
        };
        let payos = match (
            s.get("PAYOS_CLIENT_ID"),
            s.get("PAYOS_API_KEY"),
            s.get("PAYOS_CHECKSUM_KEY"),
        ) {
            (Some(id), Some(key), Some(sum)) => Some(PayosConfig {
                client_id: id.into(),
                api_key: key.into(),
                checksum_key: sum.into(),
                api_url: s
                    .get("PAYOS_API_URL")
                    .unwrap_or("https://api-merchant.payos.vn")
                    .trim_end_matches('/')
                    .into(),
            }),
            _ => None,
        };
        let stripe = s.get("STRIPE_SECRET_KEY").map(|k| StripeConfig {
            secret_key: k.into(),
            webhook_secret: s.get("STRIPE_WEBHOOK_SECRET").map(str::to_string),
            api_url: s
                .get("STRIPE_API_URL")
                .unwrap_or("https://api.stripe.com/")
                .into(),
        });
        let expiry_minutes = s.parse("PAYMENT_EXPIRY_MINUTES", 30)?;
        if !(1..=7 * 24 * 60).contains(&expiry_minutes) {
            anyhow::bail!("PAYMENT_EXPIRY_MINUTES must be between 1 and 10080");
        }
        Ok(PaymentsConfig {
            collect,
            expiry_minutes,
            bank_webhook_secret: s.get("BANK_WEBHOOK_SECRET").map(str::to_string),
            casso_checksum_key: s.get("CASSO_CHECKSUM_KEY").map(str::to_string),
            payos,
            stripe,
        })
    }

    /// The demo market's made-up collecting account, used only by `serve --demo` when no
    /// real account is configured.
    pub fn use_demo_account(&mut self) {
        if self.collect.is_none() {
            self.collect = Some(CollectAccount {
                bin: crate::domain::banks::BankBin::parse("970436").expect("valid"),
                account_no: "0011001234567".into(),
                account_name: "CHO LANG DEMO".into(),
                demo: true,
            });
        }
    }
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("data_dir", &self.data_dir)
            .field("database", &crate::db::redact_url(&self.database_url))
            .field("addr", &self.addr)
            .field("public_url", &self.public_url)
            .finish_non_exhaustive()
    }
}

/// The board's rules over time (`PRICE_BAND_DAYS`, `PRICE_MIN_STEP`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BoardRules {
    /// A change passed by vote is measured against the lowest and the highest agreed price
    /// of the item over this many days: chained small steps cannot walk a price away.
    pub band_days: i64,
    /// The smallest change worth a vote: this percent of the current price…
    pub min_step_percent: i64,
    /// …and at least this many đồng.
    pub min_step_vnd: i64,
}

impl Default for BoardRules {
    fn default() -> Self {
        BoardRules {
            band_days: 90,
            min_step_percent: 1,
            min_step_vnd: 1_000,
        }
    }
}

impl BoardRules {
    /// `PRICE_MIN_STEP`: a percent, an amount in đồng, or both (`1%,1000`).
    pub fn parse_min_step(s: &str) -> Result<(i64, i64), String> {
        let (mut pct, mut vnd) = (0, 0);
        for part in s.split([',', ' ', '+']).filter(|p| !p.is_empty()) {
            if let Some(p) = part.strip_suffix('%') {
                pct = p
                    .trim()
                    .parse::<i64>()
                    .ok()
                    .filter(|p| (0..=50).contains(p))
                    .ok_or_else(|| format!("PRICE_MIN_STEP: “{part}” is not 0% to 50%"))?;
            } else {
                vnd = part
                    .replace('.', "")
                    .parse::<i64>()
                    .ok()
                    .filter(|v| (0..=10_000_000).contains(v))
                    .ok_or_else(|| format!("PRICE_MIN_STEP: “{part}” is not an amount in đồng"))?;
            }
        }
        Ok((pct, vnd))
    }
}

/// The windows, from configuration (`GUARANTEE_DAYS`, `SHIPPED_RELEASE_DAYS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReleaseRules {
    pub guarantee_days: i64,
    pub shipped_days: i64,
    pub extend_days: i64,
}

impl Default for ReleaseRules {
    fn default() -> Self {
        ReleaseRules {
            guarantee_days: 3,
            shipped_days: 10,
            extend_days: 3,
        }
    }
}

/// Raw key/value settings: file first, environment on top.
#[derive(Default, Clone)]
pub struct Settings(HashMap<String, String>);

impl Settings {
    pub fn from_env_and_file() -> anyhow::Result<Self> {
        let explicit = std::env::var("CHOLANG_CONFIG").ok();
        let path = explicit.clone().unwrap_or_else(|| "cholang.toml".into());
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => Some(t),
            // A file named explicitly must exist; the default one is optional.
            Err(e) if explicit.is_some() => {
                return Err(e).with_context(|| format!("reading {path}"));
            }
            Err(_) => None,
        };
        Self::layered(text.as_deref(), std::env::vars()).with_context(|| format!("reading {path}"))
    }

    /// File settings (keys in any case) with environment variables on top.
    pub fn layered(
        file: Option<&str>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> anyhow::Result<Self> {
        let mut map = HashMap::new();
        if let Some(text) = file {
            let table: toml::Table = toml::from_str(text)?;
            for (k, v) in table {
                let v = match v {
                    toml::Value::String(s) => s,
                    other => other.to_string(),
                };
                map.insert(k.to_uppercase(), v);
            }
        }
        map.extend(env);
        Ok(Settings(map))
    }

    pub fn from_pairs<I: IntoIterator<Item = (String, String)>>(pairs: I) -> Self {
        Settings(pairs.into_iter().collect())
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .get(key)
            .map(|s| s.as_str())
            .filter(|s| !s.is_empty())
    }

    fn parse<T: std::str::FromStr>(&self, key: &str, default: T) -> anyhow::Result<T>
    where
        T::Err: std::fmt::Display,
    {
        match self.get(key) {
            None => Ok(default),
            Some(v) => v
                .parse()
                .map_err(|e| anyhow::anyhow!("{key}={v:?} is not valid: {e}")),
        }
    }
}

impl Config {
    pub fn load(settings: &Settings) -> anyhow::Result<Config> {
        let data_dir = PathBuf::from(settings.get("CHOLANG_DATA_DIR").unwrap_or("./data"));
        std::fs::create_dir_all(&data_dir)
            .with_context(|| format!("creating data dir {}", data_dir.display()))?;
        let database_url = match settings.get("DATABASE_URL") {
            Some(u) => u.to_string(),
            None => format!(
                "sqlite://{}?mode=rwc",
                data_dir.join("cholang.db").display()
            ),
        };
        let addr: SocketAddr = settings.parse("CHOLANG_ADDR", "127.0.0.1:8080".parse()?)?;
        let public_url = settings
            .get("CHOLANG_PUBLIC_URL")
            .map(|s| s.trim_end_matches('/').to_string())
            .unwrap_or_else(|| format!("http://{addr}"));
        let secret_key = match settings.get("CHOLANG_SECRET_KEY") {
            Some(k) if k.len() >= 32 => k.as_bytes().to_vec(),
            Some(_) => anyhow::bail!("CHOLANG_SECRET_KEY must be at least 32 characters"),
            None => load_or_create_secret(&data_dir)?,
        };
        let search = SearchConfig::load(settings, &data_dir)?;
        Ok(Config {
            data_dir,
            search,
            database_url,
            addr,
            metrics_addr: match settings.get("CHOLANG_METRICS_ADDR") {
                None | Some("") => None,
                Some(a) => Some(
                    a.parse()
                        .map_err(|e| anyhow::anyhow!("CHOLANG_METRICS_ADDR={a:?}: {e}"))?,
                ),
            },
            public_url,
            secret_key,
            max_upload_bytes: settings.parse("CHOLANG_MAX_UPLOAD_BYTES", 5 * 1024 * 1024)?,
            session_days: settings.parse("CHOLANG_SESSION_DAYS", 14)?,
            login_max_failures: settings.parse("CHOLANG_LOGIN_MAX_FAILURES", 5)?,
            login_window_minutes: settings.parse("CHOLANG_LOGIN_WINDOW_MINUTES", 15)?,
            ledger_check_secs: settings.parse("LEDGER_CHECK_SECS", 300)?,
            trusted_proxies: match settings.get("CHOLANG_TRUSTED_PROXIES") {
                None => Vec::new(),
                Some(list) => list
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(|s| {
                        s.parse()
                            .map_err(|e| anyhow::anyhow!("CHOLANG_TRUSTED_PROXIES: {s:?}: {e}"))
                    })
                    .collect::<anyhow::Result<_>>()?,
            },
            rates: {
                let rate = |key: &str, default: &str| {
                    crate::limits::rate::Rate::parse(settings.get(key).unwrap_or(default))
                        .map_err(|e| anyhow::anyhow!("{key}: {e}"))
                };
                crate::limits::rate::Rates {
                    register: rate("RATE_LIMIT_REGISTER", "10/h")?,
                    checkout: rate("RATE_LIMIT_CHECKOUT", "20/min")?,
                    lookup: rate("RATE_LIMIT_LOOKUP", "30/min")?,
                    webhook: rate("RATE_LIMIT_WEBHOOK", "3000/min")?,
                }
            },
            page_cache_ms: settings.parse("PAGE_CACHE_MS", 1000)?,
            product_cache_entries: settings.parse("PRODUCT_CACHE_ENTRIES", 16_384)?,
            housekeeping_in_serve: !matches!(
                settings.get("HOUSEKEEPING"),
                Some("off" | "0" | "false")
            ),
            checkout_max_open: settings.parse("CHECKOUT_MAX_OPEN", 3)?,
            checkout_max_held_units: settings.parse("CHECKOUT_MAX_HELD_UNITS", 30)?,
            payments: PaymentsConfig::load(settings)?,
            payouts: PayoutsConfig::load(settings)?,
            protection: ProtectionConfig::load(settings)?,
            carriers: CarriersConfig::load(settings)?,
            board: {
                let band_days: i64 = settings.parse("PRICE_BAND_DAYS", 90)?;
                if !(1..=3650).contains(&band_days) {
                    anyhow::bail!("PRICE_BAND_DAYS must be 1 to 3650 days");
                }
                let (min_step_percent, min_step_vnd) =
                    BoardRules::parse_min_step(settings.get("PRICE_MIN_STEP").unwrap_or("1%,1000"))
                        .map_err(|e| anyhow::anyhow!(e))?;
                BoardRules {
                    band_days,
                    min_step_percent,
                    min_step_vnd,
                }
            },
            notify: NotifyConfig::load(settings)?,
        })
    }

    /// Cookies get the `Secure` flag when the public URL is https.
    pub fn secure_cookies(&self) -> bool {
        self.public_url.starts_with("https://")
    }

    pub fn mail_dir(&self) -> PathBuf {
        self.data_dir.join("mail")
    }

    pub fn photos_dir(&self) -> PathBuf {
        self.data_dir.join("photos")
    }
}

/// The key in `secret.key` under the data dir, made on first start. Several instances
/// sharing one data dir may start at once: the file is created whole under a temporary
/// name and linked into place only if no other instance got there first, so every instance
/// ends up with the same key.
fn load_or_create_secret(data_dir: &std::path::Path) -> anyhow::Result<Vec<u8>> {
    use rand::RngCore;
    let path = data_dir.join("secret.key");
    if let Ok(bytes) = std::fs::read(&path)
        && bytes.len() >= 32
    {
        return Ok(bytes);
    }
    let mut key = vec![0u8; 32];
    rand::thread_rng().fill_bytes(&mut key);
    let tmp = data_dir.join(format!("secret.key.{}", std::process::id()));
    std::fs::write(&tmp, &key).with_context(|| format!("writing {}", tmp.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))?;
    }
    let linked = std::fs::hard_link(&tmp, &path);
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => Ok(key),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let bytes =
                std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
            anyhow::ensure!(
                bytes.len() >= 32,
                "{} is shorter than 32 bytes",
                path.display()
            );
            Ok(bytes)
        }
        Err(e) => Err(e).with_context(|| format!("writing {}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_password() {
        assert_eq!(
            crate::db::redact_url("postgres://u:secret@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(crate::db::redact_url("sqlite://x.db"), "sqlite://x.db");
    }

    #[test]
    fn environment_wins_over_the_file() {
        let file = "cholang_addr = \"0.0.0.0:9000\"\ncholang_session_days = 3\nCHOLANG_DATA_DIR = \"/srv\"";
        let env = [("CHOLANG_SESSION_DAYS".to_string(), "5".to_string())];
        let s = Settings::layered(Some(file), env).unwrap();
        assert_eq!(s.get("CHOLANG_ADDR"), Some("0.0.0.0:9000"));
        assert_eq!(s.get("CHOLANG_SESSION_DAYS"), Some("5"));
        assert_eq!(s.get("CHOLANG_DATA_DIR"), Some("/srv"));
        assert!(Settings::layered(Some("not = [toml"), []).is_err());
    }

    #[test]
    fn bad_numbers_are_reported_with_their_key() {
        let s = Settings::from_pairs([("CHOLANG_SESSION_DAYS".into(), "many".into())]);
        let err = s.parse::<i64>("CHOLANG_SESSION_DAYS", 1).unwrap_err();
        assert!(err.to_string().contains("CHOLANG_SESSION_DAYS"));
    }
}
