//! `btcbot sim-exchange`: a BTCTurk-compatible simulated exchange over a replay dataset.

use crate::domain::decimal_from_str;
use crate::exchange::sim::{FaultSpec, SimAccount, SimConfig, SimSpeed, serve};
use clap::Args;
use rust_decimal::Decimal;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Debug, Args)]
pub struct SimExchangeArgs {
    /// Replay dataset directory (the format `btcbot replay` reads).
    #[arg(long)]
    pub dataset: PathBuf,
    /// REST address, e.g. 127.0.0.1:8080 (port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Websocket feed address, e.g. 127.0.0.1:8081 (off when absent).
    #[arg(long)]
    pub ws_listen: Option<SocketAddr>,
    /// Accounts YAML: `accounts: [{public_key, secret, balances: {TRY: "10000"}}]`.
    #[arg(long)]
    pub accounts: PathBuf,
    /// Market pacing: `realtime`, a factor such as `10` (10x faster), or `manual` (frozen).
    #[arg(long, default_value = "realtime", value_parser = SimSpeed::parse)]
    pub speed: SimSpeed,
    /// Faults, e.g. `latency=50ms,5xx=0.1,timeout=0.05,429=burst:3/retry-after:1,
    /// lost_order_response=0.02,cancel_delay=200ms,comma_decimals=on,seed=7`.
    #[arg(long, default_value = "", value_parser = FaultSpec::parse)]
    pub faults: FaultSpec,
    /// Maker fee in basis points of the notional.
    #[arg(long = "maker-bps", default_value = "10")]
    pub maker_bps: Decimal,
    /// Taker fee in basis points of the notional.
    #[arg(long = "taker-bps", default_value = "15")]
    pub taker_bps: Decimal,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AccountsFile {
    accounts: Vec<AccountEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AccountEntry {
    public_key: String,
    secret: String,
    #[serde(default)]
    balances: BTreeMap<String, serde_norway::Value>,
}

/// Reads an accounts file. Amounts are strings (`"0.5"`) or integers; floats are refused so no
/// amount goes through f64.
///
/// # Errors
/// One line naming the file and what is wrong.
pub fn load_accounts(path: &Path) -> Result<Vec<SimAccount>, String> {
    let err = |m: String| format!("{}: {m}", path.display());
    let text = std::fs::read_to_string(path).map_err(|e| err(format!("cannot read: {e}")))?;
    let file: AccountsFile = serde_norway::from_str(&text)
        .map_err(|e| err(format!("not a valid accounts file: {e}")))?;
    if file.accounts.is_empty() {
        return Err(err("accounts: empty".into()));
    }
    file.accounts
        .into_iter()
        .map(|a| {
            let balances = a
                .balances
                .iter()
                .map(|(asset, v)| {
                    let amount = match v {
                        serde_norway::Value::String(s) => decimal_from_str(s).ok(),
                        serde_norway::Value::Number(n) if n.is_i64() || n.is_u64() => {
                            decimal_from_str(&n.to_string()).ok()
                        }
                        _ => None,
                    };
                    amount.map(|d| (asset.clone(), d)).ok_or_else(|| {
                        err(format!(
                            "account {}: balance {asset}: write the amount as a string, e.g. \"0.5\"",
                            a.public_key
                        ))
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok(SimAccount {
                public_key: a.public_key,
                secret_b64: a.secret,
                balances,
            })
        })
        .collect()
}

pub fn run(args: SimExchangeArgs) -> Result<ExitCode, String> {
    let accounts = load_accounts(&args.accounts)?;
    let config = SimConfig {
        dataset: args.dataset,
        listen: args.listen,
        ws_listen: args.ws_listen,
        accounts,
        speed: args.speed,
        faults: args.faults,
        maker_fee_bps: args.maker_bps,
        taker_fee_bps: args.taker_bps,
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    rt.block_on(async move {
        let handle = serve(config).await?;
        println!("sim-exchange listening on http://{}", handle.addr());
        if let Some(ws) = handle.ws_addr() {
            println!("sim-exchange websocket feed on ws://{ws}");
        }
        if tokio::signal::ctrl_c().await.is_err() {
            eprintln!("cannot wait for Ctrl-C; stopping");
        }
        eprintln!("interrupted: stopping");
        handle.shutdown().await;
        Ok(ExitCode::SUCCESS)
    })
}
