//! What each `tclearn` subcommand does. Reads go through the members' API; proposals and votes
//! are signed with the member's key and sent to the chain; the vault is reached signed in.

use crate::{
    output::{self, metric, short, strength},
    Global,
};
use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::{
    io::Write,
    path::PathBuf,
    str::FromStr,
    time::{Duration, Instant},
};
use tclearn_api_client::{
    client::{self as api, ApiClient},
    views::{BlockView, CoalitionView, MemberView, PrivacyDeclaration, ProposalView, RoundView, StoredObject},
};
use tclearn_client::{
    account_to_address,
    anchors::AuditAnchors,
    coalition::{
        rdp, rules, CallError, Coalition, CoalitionError, DpDeclaration, EvaluationSpec, Fraction, Genesis,
        GovernanceParams, Hyperparameters, MetricKind, PrivacySpend, METRIC_ONE,
    },
    parse, AccountId32, Client, ContractArtifact, ContractMetadata, Keypair, H256,
};
use tclearn_member::{
    dp_sgd::DpSgd,
    id_cache::IdCache,
    privacy,
    trainer::{self, CnnParameters, GenesisRecipe, MlpParameters, Model, Network, Standardisation, Table, Training},
};

#[cfg(feature = "attack")]
mod attack;
mod audit;
mod download;
mod found;
mod governance;
mod key;
mod model_init;
mod privacy_epsilon;
mod propose;
mod report;
mod split;
mod status;
mod train;
mod upload;

pub use self::{
    audit::*, download::*, found::*, governance::*, key::*, model_init::*, privacy_epsilon::*, propose::*, report::*,
    split::*, status::*, train::*, upload::*,
};

// ---- Keys -----------------------------------------------------------------------------------

fn key_path(g: &Global) -> Result<PathBuf> {
    if let Some(path) = &g.key {
        return Ok(path.clone());
    }
    let config = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".config")))
        .ok_or_else(|| anyhow!("no --key, and neither XDG_CONFIG_HOME nor HOME is set"))?;
    Ok(config.join("tclearn").join("key"))
}

/// The member's key, from its key file.
fn load_key(g: &Global) -> Result<Keypair> {
    let path = key_path(g)?;
    let secret = std::fs::read_to_string(&path)
        .with_context(|| format!("no key at {}: run `tclearn key new` or `tclearn key import`", path.display()))?;
    Keypair::from_uri(secret.trim()).with_context(|| format!("the key file {}", path.display()))
}

/// Write `secret` to the key file, readable by its owner only.
fn store_key(g: &Global, secret: &str, force: bool) -> Result<Keypair> {
    let key = Keypair::from_uri(secret.trim()).context("not a secret URI (a mnemonic, a hex seed or a //Dev path)")?;
    let path = key_path(g)?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| dir.display().to_string())?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true);
    if force {
        options.create(true).truncate(true);
    } else {
        options.create_new(true);
    }
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&path).with_context(|| {
        if path.exists() {
            format!("{} exists: pass --force to replace it", path.display())
        } else {
            path.display().to_string()
        }
    })?;
    writeln!(file, "{}", secret.trim()).with_context(|| path.display().to_string())?;
    Ok(key)
}

fn print_key(g: &Global, key: &Keypair, note: &str) -> Result<i32> {
    let path = key_path(g)?;
    if g.json {
        println!(
            "{}",
            json!({ "account": key.account_id().to_string(), "address": format!("{:?}", key.address()), "key_file": path })
        );
    } else {
        println!("account {}\naddress {:?}\n{note}{}", key.account_id(), key.address(), path.display());
    }
    Ok(0)
}

// ---- The chain --------------------------------------------------------------------------------

fn artifacts(g: &Global) -> Result<PathBuf> {
    g.artifacts
        .clone()
        .ok_or_else(|| anyhow!("where are the contracts' metadata? pass --artifacts or set TCLEARN_ARTIFACTS"))
}

fn metadata(g: &Global, name: &str) -> Result<ContractMetadata> {
    let path = artifacts(g)?.join(format!("{name}.json"));
    let text = std::fs::read_to_string(&path).with_context(|| path.display().to_string())?;
    Ok(ContractMetadata::parse(&text)?)
}

async fn connect(g: &Global) -> Result<Client> {
    let rpc = &g.chain.rpc;
    Client::connect(rpc).await.with_context(|| format!("connecting to the node at {rpc}"))
}

/// The coalition the API serves, on the chain.
async fn coalition(g: &Global) -> Result<(Coalition, CoalitionView)> {
    let view = coalition_view(g).await?;
    let client = connect(g).await?;
    Ok((Coalition::at(client, parse::address(&view.address)?, metadata(g, "coalition")?), view))
}

/// The coalition as the members' API describes it, which must be the one `--coalition` names
/// when it is given.
async fn coalition_view(g: &Global) -> Result<CoalitionView> {
    let view: CoalitionView =
        api::read(&g.api, "/api/coalition").await.context("reading the coalition from the members' API")?;
    ensure_pinned(g.coalition, &view.address)?;
    Ok(view)
}

/// Sign in to the members' API as `key`; with `--coalition`, only to sign-in messages that name
/// that coalition.
async fn sign_in(g: &Global, key: &Keypair) -> Result<ApiClient> {
    let http = api::http_builder().build().context("an HTTP client")?;
    let mut session = ApiClient::new(&g.api, key.clone(), http);
    if let Some(pinned) = g.coalition {
        session = session.for_coalition(pinned);
    }
    if let Some(path) = &g.receipts {
        session = session.keeping_receipts_in(path.clone());
    }
    session.token().await.context("signing in to the members' API")?;
    Ok(session)
}

/// Refuse an API that serves another coalition than the member's `pinned` one.
fn ensure_pinned(pinned: Option<tclearn_client::H160>, served: &str) -> Result<()> {
    match pinned {
        Some(pinned) if parse::address(served).ok() != Some(pinned) => bail!(
            "the members' API serves coalition {served}, not {pinned:?} (--coalition, TCLEARN_COALITION): \
             check the API's address"
        ),
        _ => Ok(()),
    }
}

/// A contract's refusal in a member's words.
fn explain(error: CallError, view: &CoalitionView) -> anyhow::Error {
    let CallError::Contract(error) = error else {
        return anyhow!(error);
    };
    let why = match error {
        CoalitionError::NotMember => "this key is not a member of the coalition".to_string(),
        CoalitionError::RoundOpen => "another round is open: wait for its verdict (`tclearn status`)".to_string(),
        CoalitionError::StaleParent => {
            format!("the tip moved to block {} since this candidate was trained: train again on the new tip", view.tip)
        }
        CoalitionError::KnownParameters => "these parameters are a block's already".to_string(),
        CoalitionError::DataIdUsed => "some of these samples are in a block already: train again".to_string(),
        CoalitionError::BatchTooSmall => {
            format!("too few samples: the coalition needs at least {}", view.min_batch_size)
        }
        CoalitionError::PrivacyBudgetExceeded => match view.privacy_budget {
            Some(budget) => format!(
                "this would take your privacy spend past the coalition's budget of epsilon {} at delta {:e} \
                 (a proposal must declare its spend when a budget is set)",
                budget.epsilon, budget.delta
            ),
            None => "privacy budget exceeded".to_string(),
        },
        CoalitionError::GovernancePending => "a passed governance change is due: enact it first".to_string(),
        CoalitionError::ProposalCooldown => format!(
            "your last round ended less than {} blocks ago: let another member propose, then try again",
            view.proposal_cooldown
        ),
        CoalitionError::Reserved => {
            "this candidate is another member's, from its round that ended without a block, and stays \
             reserved for that member for a while"
                .to_string()
        }
        other => format!("{other:?}"),
    };
    anyhow!("the coalition refused: {why}")
}

#[cfg(test)]
mod tests {
    use super::ensure_pinned;
    use tclearn_client::H160;

    #[test]
    fn an_api_serving_another_coalition_than_the_pinned_one_is_refused() {
        let pinned = H160::repeat_byte(0xc0);
        assert!(ensure_pinned(Some(pinned), &format!("{pinned:?}")).is_ok());
        assert!(ensure_pinned(None, "0x0101010101010101010101010101010101010101").is_ok(), "nothing pinned");
        let other = ensure_pinned(Some(pinned), "0x0101010101010101010101010101010101010101").unwrap_err();
        assert!(other.to_string().contains("not 0xc0c0"), "{other}");
        assert!(ensure_pinned(Some(pinned), "not an address").is_err());
    }
}
