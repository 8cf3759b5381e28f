use std::io::Read;
use std::path::PathBuf;

use anyhow::Context;
use cholang::accounts::{Login, NewUser, Role};
use cholang::app::{Server, shutdown_signal};
use cholang::config::{Config, Settings};
use cholang::db::Db;
use clap::{Parser, Subcommand};

#[global_allocator]
static ALLOCATOR: cholang::app::SplitAllocator = cholang::app::SplitAllocator;

#[derive(Parser)]
#[command(
    name = "cholang",
    version,
    about = "Chợ Làng — chợ làng nghề, giá cộng đồng"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the web server (address from CHOLANG_ADDR).
    Serve {
        /// Load the demo market when the database is empty.
        #[arg(long)]
        demo: bool,
    },
    /// Apply database migrations and exit.
    Migrate,
    /// Deliver notices from the outbox (when not run inside `serve`); with Meilisearch, also
    /// apply the search queue.
    Worker,
    /// Rebuild the search index from the database, applying search-config/ settings first.
    Reindex,
    /// Import a village catalogue CSV (all rows or none).
    Import {
        file: PathBuf,
        /// Province of villages the file creates.
        #[arg(long, default_value = "Hà Nội")]
        province: String,
    },
    /// Copy the embedded database (consistent, while `serve` runs), photos and key into FILE.
    Backup { file: PathBuf },
    /// Restore a backup into an empty data dir (the search index is rebuilt at start).
    Restore { file: PathBuf },
    /// Accounts and roles.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Create an account. The password is read from CHOLANG_NEW_PASSWORD or standard input.
    CreateUser {
        #[arg(long, value_parser = ["seller", "moderator", "admin"])]
        role: String,
        /// Email or Vietnamese mobile number.
        #[arg(long)]
        login: String,
        #[arg(long)]
        name: String,
    },
    /// Make an account a moderator of a village's price board.
    AddModerator {
        #[arg(long)]
        village: String,
        #[arg(long)]
        login: String,
    },
    /// Give a shop (e.g. an imported, unclaimed one) to a seller account.
    AssignShop {
        #[arg(long)]
        shop: String,
        #[arg(long)]
        login: String,
    },
}

fn main() -> anyhow::Result<std::process::ExitCode> {
    cholang::app::tune_allocator();
    // Log lines are written by a thread of their own, a batch per write: a request never
    // waits on standard output (its lock and a system call per line were 6 % of a page's
    // time). Kept until main returns, so the last lines are flushed.
    let (log_writer, _flush_on_exit) =
        tracing_appender::non_blocking::NonBlockingBuilder::default()
            .lossy(false)
            .finish(std::io::BufWriter::with_capacity(
                64 * 1024,
                std::io::stdout(),
            ));
    init_logging(log_writer)?;
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run())
}

fn init_logging(writer: tracing_appender::non_blocking::NonBlocking) -> anyhow::Result<()> {
    use std::io::IsTerminal;
    let ansi = std::io::stdout().is_terminal();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| "info,sqlx=warn,tower_http=info".into());
    // `CHOLANG_LOG_FORMAT=json`: one JSON object per line, with the request's span (its id)
    // on every line logged while serving it.
    match std::env::var("CHOLANG_LOG_FORMAT").as_deref() {
        Ok("json") => tracing_subscriber::fmt()
            .with_writer(writer)
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .with_env_filter(filter)
            .init(),
        Ok("text") | Err(_) => tracing_subscriber::fmt()
            .with_writer(writer)
            .with_ansi(ansi)
            .with_env_filter(filter)
            .init(),
        Ok(other) => {
            tracing_subscriber::fmt()
                .with_writer(writer)
                .with_ansi(ansi)
                .with_env_filter(filter)
                .init();
            anyhow::bail!("CHOLANG_LOG_FORMAT must be json or text, not {other:?}");
        }
    }
    Ok(())
}

/// What a command does; a refused import ends with a failure code after its message (not
/// `process::exit`, which would skip flushing the log thread).
async fn run() -> anyhow::Result<std::process::ExitCode> {
    let cli = Cli::parse();
    let mut config = Config::load(&Settings::from_env_and_file()?)?;
    // Restoring comes before anything opens (and so creates) the database.
    if let Command::Restore { file } = &cli.command {
        let m = cholang::backup::restore(&config, file).await?;
        println!(
            "restored {} (taken {}): {} orders, {} products, {} photos; the search index is rebuilt at the first start",
            file.display(),
            m.created_at,
            m.orders,
            m.products,
            m.photos
        );
        return Ok(std::process::ExitCode::SUCCESS);
    }
    let db = Db::connect(&config.database_url).await?;
    cholang::app::prepare(&db, &config).await?;
    match cli.command {
        Command::Migrate => {
            println!("migrations applied");
        }
        Command::Worker => {
            let notifier = cholang::notify::worker::Notifier::new(
                db.clone(),
                std::sync::Arc::new(config.clone()),
            )?;
            let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
            let run = tokio::spawn(notifier.run(stop_rx));
            tracing::info!("notice worker running");
            // Payment expiry, releases, payout follow-ups…: safe beside `serve` and other
            // workers doing the same.
            let housekeeping = tokio::spawn(cholang::app::housekeeping(
                db.clone(),
                std::sync::Arc::new(config.clone()),
            ));
            tracing::info!("housekeeping running");
            // The embedded index belongs to `serve`; Meilisearch can be fed from here.
            let search = match &config.search.meili_url {
                Some(_) => {
                    let search = cholang::search::Search::open(&config.search, db.clone())?;
                    let sync = cholang::search::sync::SearchSync::new(search);
                    let mut stop = stop_tx.subscribe();
                    let every = std::time::Duration::from_millis(config.search.sync_interval_ms);
                    tracing::info!("search sync worker running");
                    Some(tokio::spawn(sync.run(every, async move {
                        let _ = stop.wait_for(|s| *s).await;
                    })))
                }
                None => None,
            };
            shutdown_signal().await;
            housekeeping.abort();
            let _ = stop_tx.send(true);
            let _ = run.await;
            if let Some(s) = search {
                let _ = s.await;
            }
        }
        Command::Serve { demo } => {
            if demo {
                config.payments.use_demo_account();
            }
            if demo && cholang::demo::catalog::load_if_empty(&db).await? {
                // Delivery: each shop's pickup commune and "tự giao" fees.
                cholang::demo::shipping::load(&db)
                    .await
                    .map_err(|e| anyhow::anyhow!("demo shipping: {e:?}"))?;
                // Money on every money page: a shop due, a shop held, a refund owed, a
                // transfer nobody claimed.
                cholang::demo::payouts::load(&db, &config)
                    .await
                    .map_err(|e| anyhow::anyhow!("demo money: {e:?}"))?;
                // Buyer protection: waiting for the buyer, a request open, a refund on its way.
                cholang::demo::protection::load(&db, &config)
                    .await
                    .map_err(|e| anyhow::anyhow!("demo buyer protection: {e:?}"))?;
                // Origin pages: a printed batch per shop, with a few days of scans.
                cholang::demo::origin::load(&db)
                    .await
                    .map_err(|e| anyhow::anyhow!("demo batches: {e:?}"))?;
                // The board's inbox: a product asking to take an item under another name.
                cholang::demo::catalog::item_request(&db)
                    .await
                    .map_err(|e| anyhow::anyhow!("demo item request: {e:?}"))?;
                // The village's digital team: a helper with two households.
                cholang::demo::catalog::digital_team(&db)
                    .await
                    .map_err(|e| anyhow::anyhow!("demo digital team: {e:?}"))?;
                tracing::info!(
                    "demo market loaded: sellers log in with phone 0912000101 … 0912000502, moderator 0912000100, digital-team helper 0912000109, admin {}; password {:?}",
                    cholang::demo::catalog::ADMIN_EMAIL,
                    cholang::demo::catalog::DEMO_PASSWORD
                );
            }
            if demo {
                // Pictures for the demo's products, drawn in the background so the market
                // answers at once (a few seconds on a laptop).
                let (db, dir) = (db.clone(), config.photos_dir());
                tokio::spawn(async move {
                    match cholang::demo::pictures::add_missing(&db, &dir).await {
                        Ok(0) => {}
                        Ok(n) => tracing::info!(pictures = n, "demo pictures drawn"),
                        Err(e) => tracing::warn!(error = %e, "demo pictures not drawn"),
                    }
                });
            }
            let server = Server::bind(config.clone(), db).await?;
            tracing::info!(config = ?config, "Chợ Làng listening on http://{}", server.local_addr()?);
            server.run(shutdown_signal()).await?;
        }
        Command::Import { file, province } => {
            let input = std::io::BufReader::with_capacity(
                1 << 20,
                std::fs::File::open(&file)
                    .with_context(|| format!("reading {}", file.display()))?,
            );
            match cholang::import::import_reader(&db, input, &province).await {
                Ok(report) => {
                    println!("{}", serde_json::to_string_pretty(&report)?);
                    if !report.changed() {
                        println!("không có gì thay đổi");
                    }
                }
                Err(e) => {
                    eprint!("{e}");
                    return Ok(std::process::ExitCode::FAILURE);
                }
            }
        }
        Command::Reindex => reindex(&config, db).await?,
        Command::Backup { file } => {
            let m = cholang::backup::backup(&db, &config, &file).await?;
            println!(
                "backup written to {}: {} orders, {} products, {} photos",
                file.display(),
                m.orders,
                m.products,
                m.photos
            );
        }
        Command::Restore { .. } => unreachable!("handled before the database opens"),
        Command::Admin { command } => admin(&db, command).await?,
    }
    Ok(std::process::ExitCode::SUCCESS)
}

async fn reindex(config: &Config, db: Db) -> anyhow::Result<()> {
    use cholang::index_queue::{Scope, enqueue_now};
    match cholang::search::Search::open(&config.search, db.clone()) {
        Ok(search) => {
            let engine = search.engine.name();
            let mut sync = cholang::search::sync::SearchSync::new(search);
            let started = std::time::Instant::now();
            let n = sync.rebuild().await?;
            println!(
                "search index rebuilt ({engine}): {n} products in {:.1} s",
                started.elapsed().as_secs_f64()
            );
        }
        // The embedded index is open in a running `serve`: it rebuilds from the queue.
        Err(e) if config.search.meili_url.is_none() => {
            enqueue_now(&db, Scope::All).await?;
            println!("the index is in use ({e}); a full rebuild is queued for the running server");
        }
        Err(e) => return Err(e.into()),
    }
    Ok(())
}

async fn find_user(db: &Db, login: &str) -> anyhow::Result<cholang::accounts::User> {
    let login = Login::parse(login).map_err(|e| anyhow::anyhow!(e))?;
    cholang::accounts::store::find_by_login(db, &login)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no account with that login"))
}

async fn admin(db: &Db, command: AdminCommand) -> anyhow::Result<()> {
    match command {
        AdminCommand::CreateUser { role, login, name } => {
            let password = match std::env::var("CHOLANG_NEW_PASSWORD") {
                Ok(p) if !p.is_empty() => p,
                _ => {
                    let mut s = String::new();
                    std::io::stdin().read_to_string(&mut s)?;
                    s.trim_end_matches(['\r', '\n']).to_string()
                }
            };
            let role = Role::parse(&role).map_err(|e| anyhow::anyhow!(e))?;
            let mut new = NewUser::parse(&login, &name, &password, role).map_err(|e| match e {
                cholang::error::AppError::Validation(f) => anyhow::anyhow!("invalid: {:?}", f.0),
                other => anyhow::anyhow!(other.to_string()),
            })?;
            // The platform's admin creating an account vouches for its phone.
            new.phone_proven = true;
            let user = cholang::accounts::store::create_user(db, new)
                .await
                .map_err(|e| anyhow::anyhow!(e.to_string()))?;
            println!("created {} account #{}", role.as_str(), user.id.0);
        }
        AdminCommand::AddModerator { village, login } => {
            let user = find_user(db, &login).await?;
            let v = cholang::catalog::store::village_by_slug(db, &village)
                .await
                .map_err(|_| anyhow::anyhow!("no village {village}"))?;
            if user.role == Role::Seller {
                cholang::accounts::store::set_role(db, user.id, Role::Moderator).await?;
            }
            cholang::accounts::store::add_moderator(db, v.id.0, user.id).await?;
            println!("{} now moderates {}", user.display_name, v.name);
        }
        AdminCommand::AssignShop { shop, login } => {
            let user = find_user(db, &login).await?;
            let s = cholang::catalog::store::shop_by_slug(db, &shop)
                .await
                .map_err(|_| anyhow::anyhow!("no shop {shop}"))?;
            cholang::catalog::store::assign_owner(db, s.id, &user)
                .await
                .map_err(|e| match e {
                    cholang::error::AppError::Validation(f) => anyhow::anyhow!(
                        "refused: {}",
                        f.0.values().cloned().collect::<Vec<_>>().join(" ")
                    ),
                    other => anyhow::anyhow!(other.to_string()),
                })?;
            println!("{} now owns {}", user.display_name, s.name);
        }
    }
    Ok(())
}
