//! What a replay command (`backtest`, `rules diff`) makes of a config: the dataset it replays
//! and the account it starts from. A config whose venue is BTCTurk (paper or live) replays too,
//! given a dataset and the balances to start with, so the very config that trades is the one a
//! rule change is proven on.

use super::{Config, ExchangeSection};
use rust_decimal::Decimal;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Starting balances by asset, as `--balance ASSET=AMOUNT` gives them.
pub type Balances = BTreeMap<String, Decimal>;

/// Parses one `--balance ASSET=AMOUNT` (e.g. `TRY=10000`): an asset of letters and digits
/// (upper-cased, as BTCTurk spells them) and an amount of zero or more.
///
/// # Errors
/// The text is not of that shape.
pub fn parse_balance(text: &str) -> Result<(String, Decimal), String> {
    let bad =
        |why: &str| format!("--balance {text:?}: {why} (expected ASSET=AMOUNT, e.g. TRY=10000)");
    let (asset, amount) = text.split_once('=').ok_or_else(|| bad("no `=`"))?;
    let asset = asset.trim();
    if asset.is_empty() || !asset.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(bad("the asset must be letters and digits"));
    }
    let amount = crate::domain::decimal_from_str(amount.trim()).map_err(|e| bad(&e))?;
    if amount < Decimal::ZERO {
        return Err(bad("a balance cannot be negative"));
    }
    Ok((asset.to_ascii_uppercase(), amount))
}

/// The balances of every `--balance` given (`None`: none given).
///
/// # Errors
/// An asset given twice.
pub fn balances_from(given: &[(String, Decimal)]) -> Result<Option<Balances>, String> {
    if given.is_empty() {
        return Ok(None);
    }
    let mut balances = Balances::new();
    for (asset, amount) in given {
        if balances.insert(asset.clone(), *amount).is_some() {
            return Err(format!("--balance {asset} is given twice"));
        }
    }
    Ok(Some(balances))
}

impl Config {
    /// The dataset a replay opens: `given` (a command's `--dataset`) when there is one, else the
    /// configured `exchange.dataset`, which must then exist.
    ///
    /// # Errors
    /// Neither a dataset given nor a replay venue configured, or the configured dataset is not a
    /// directory (one line naming bot.yaml and the key).
    pub fn replay_dataset(&self, given: Option<&Path>) -> Result<PathBuf, String> {
        let bot_yaml = self.dir.join("bot.yaml");
        if let Some(given) = given {
            return Ok(given.to_path_buf());
        }
        let Some(configured) = &self.dataset else {
            return Err(format!(
                "{}: exchange.kind is btcturk: give --dataset DIR (and --balance ASSET=AMOUNT) \
                 to replay this config",
                bot_yaml.display()
            ));
        };
        if configured.is_dir() {
            Ok(configured.clone())
        } else {
            Err(format!(
                "{}: exchange.dataset: dataset directory {} not found (or give --dataset)",
                bot_yaml.display(),
                configured.display()
            ))
        }
    }

    /// Points this config at the replay a command asked for: `dataset` in place of the
    /// configured one, `balances` in place of `exchange.starting_balances`. A BTCTurk venue
    /// becomes a replay of `dataset` (which then needs `balances`): its URL, credentials and
    /// feed are not used, and a replay venue can never arm live trading. Without either, a
    /// replay config keeps its own dataset (which must exist) and anything else is unchanged.
    ///
    /// # Errors
    /// One line naming bot.yaml: a BTCTurk venue given a dataset but no balances, balances
    /// without a dataset to replay, or a configured dataset that is missing.
    pub fn replay_over(
        &mut self,
        dataset: Option<&Path>,
        balances: Option<&Balances>,
    ) -> Result<(), String> {
        let bot_yaml = self.dir.join("bot.yaml");
        if self.dataset.is_some() {
            let resolved = self.replay_dataset(dataset)?;
            if let ExchangeSection::Replay {
                starting_balances, ..
            } = &mut self.bot.exchange
                && let Some(given) = balances
            {
                starting_balances.clone_from(given);
            }
            self.dataset = Some(resolved);
            return Ok(());
        }
        match (dataset, balances) {
            (None, None) => Ok(()),
            (None, Some(_)) => Err(format!(
                "{}: exchange.kind is btcturk: --balance sets a replay's starting balances, so \
                 it needs --dataset",
                bot_yaml.display()
            )),
            (Some(_), None) => Err(format!(
                "{}: exchange.kind is btcturk: replaying it over --dataset needs the account \
                 to start from: --balance ASSET=AMOUNT, once per asset (e.g. --balance TRY=10000)",
                bot_yaml.display()
            )),
            (Some(dataset), Some(balances)) => {
                self.bot.exchange = ExchangeSection::Replay {
                    dataset: dataset.to_path_buf(),
                    starting_balances: balances.clone(),
                };
                self.dataset = Some(dataset.to_path_buf());
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn dec(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap_or_default()
    }

    #[test]
    fn a_balance_is_an_asset_and_an_amount_of_zero_or_more() {
        assert_eq!(parse_balance("TRY=10000"), Ok(("TRY".into(), dec("10000"))));
        assert_eq!(parse_balance(" btc = 0.5 "), Ok(("BTC".into(), dec("0.5"))));
        for bad in ["TRY", "=5", "TRY=", "TRY=-1", "T-RY=5", "TRY=abc"] {
            let err = parse_balance(bad).err().unwrap_or_default();
            assert!(
                err.starts_with(&format!("--balance {bad:?}: ")),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn balances_name_each_asset_once() {
        assert_eq!(balances_from(&[]), Ok(None));
        let two = [
            ("TRY".to_string(), dec("1")),
            ("BTC".to_string(), dec("0.1")),
        ];
        assert_eq!(balances_from(&two).ok().flatten().map(|b| b.len()), Some(2));
        let twice = [("TRY".to_string(), dec("1")), ("TRY".to_string(), dec("2"))];
        assert_eq!(
            balances_from(&twice),
            Err("--balance TRY is given twice".into())
        );
    }

    fn config(name: &str) -> Config {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("configs")
            .join(name);
        Config::load(&dir).unwrap_or_else(|e| panic!("{name}: {e}"))
    }

    #[test]
    fn a_btcturk_config_replays_a_given_dataset_from_given_balances() {
        let dataset = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/replay/sample");
        let balances: Balances = [("TRY".to_string(), dec("25000"))].into();
        let mut paper = config("paper");
        paper
            .replay_over(None, None)
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(
            paper.dataset.is_none(),
            "no replay asked for: the venue stays"
        );
        let no_balances = paper.clone().replay_over(Some(&dataset), None);
        assert!(
            no_balances
                .as_ref()
                .is_err_and(|e| e.contains("paper/bot.yaml: exchange.kind is btcturk")
                    && e.contains("--balance ASSET=AMOUNT")),
            "{no_balances:?}"
        );
        let no_dataset = paper.clone().replay_over(None, Some(&balances));
        assert!(no_dataset.is_err_and(|e| e.contains("needs --dataset")));
        paper
            .replay_over(Some(&dataset), Some(&balances))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(paper.dataset.as_deref(), Some(dataset.as_path()));
        assert_eq!(
            paper.bot.exchange,
            ExchangeSection::Replay {
                dataset: dataset.clone(),
                starting_balances: balances.clone()
            }
        );
        assert_eq!(
            crate::engine::venue::kind(&paper),
            crate::engine::arming::VenueKind::Replay
        );

        let mut default = config("default");
        let before = default.bot.exchange.clone();
        default
            .replay_over(None, None)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(default.bot.exchange, before, "its own dataset and balances");
        default
            .replay_over(Some(&dataset), Some(&balances))
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(&default.bot.exchange,
            ExchangeSection::Replay { starting_balances, .. } if *starting_balances == balances));
    }
}
