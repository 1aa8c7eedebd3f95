//! Protocol values from text, as members type them and as the members' API receives them: one
//! parser per value, used by the API and the command line alike.

use crate::{
    coalition::{Action, Fraction, Hyperparameter, PrivacySpend},
    AccountId32, H160,
};
use std::str::FromStr;

/// Why a value could not be read, with the text that was given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{text:?}: {reason}")]
pub struct ParseError {
    /// What was given.
    pub text: String,
    /// What it should have been.
    pub reason: String,
}

fn invalid(text: &str, reason: &str) -> ParseError {
    ParseError { text: text.to_string(), reason: reason.to_string() }
}

/// A 32-byte hash (a model, a data ID, a test set): hex, `0x` optional.
///
/// # Errors
/// The text is not 32 bytes of hex.
pub fn hash(text: &str) -> Result<[u8; 32], ParseError> {
    let mut hash = [0u8; 32];
    hex::decode_to_slice(text.trim().trim_start_matches("0x"), &mut hash)
        .map_err(|_| invalid(text, "not 32 bytes of hex"))?;
    Ok(hash)
}

/// A contract address (H160): hex, `0x` optional.
///
/// # Errors
/// The text is not 20 bytes of hex.
pub fn address(text: &str) -> Result<H160, ParseError> {
    H160::from_str(text.trim().trim_start_matches("0x")).map_err(|_| invalid(text, "not a 20-byte address"))
}

/// An account: SS58, or 32 bytes of hex.
///
/// # Errors
/// The text is neither.
pub fn account(text: &str) -> Result<AccountId32, ParseError> {
    if let Ok(bytes) = hash(text) {
        return Ok(AccountId32(bytes));
    }
    AccountId32::from_str(text.trim()).map_err(|_| invalid(text, "an account is SS58 or 32 bytes of hex"))
}

/// A privacy spend or budget written `epsilon,delta`.
///
/// # Errors
/// Not two numbers, or not finite and non-negative.
pub fn privacy(text: &str) -> Result<PrivacySpend, ParseError> {
    let bad = || invalid(text, "a privacy budget is epsilon,delta or none");
    let (epsilon, delta) = text.split_once(',').ok_or_else(bad)?;
    let real = |v: &str| v.trim().parse::<f64>().map_err(|_| bad());
    PrivacySpend::from_real(real(epsilon)?, real(delta)?)
        .ok_or_else(|| invalid(text, "epsilon and delta are finite and not negative"))
}

/// A hyperparameter change written `name=value`, with the names of
/// [`crate::coalition::Hyperparameters`]' fields (`lambda_ppm=950000`, `quorum=2/3`,
/// `privacy_budget=8,1e-5` or `privacy_budget=none`).
///
/// # Errors
/// An unknown name, or a value that is not of its kind or too large.
pub fn hyperparameter(text: &str) -> Result<Hyperparameter, ParseError> {
    let bad = |why: &str| invalid(text, why);
    let (name, value) = text.split_once('=').ok_or_else(|| bad("expected name=value"))?;
    let (name, value) = (name.trim(), value.trim());
    let int = || value.parse::<u64>().map_err(|_| bad("not a whole number"));
    let small = || int().and_then(|v| u32::try_from(v).map_err(|_| bad("too large")));
    Ok(match name {
        "lambda_ppm" => Hyperparameter::Lambda(small()?),
        "validators_per_round" => Hyperparameter::ValidatorsPerRound(small()?),
        "quorum" => {
            let (num, den) = value.split_once('/').ok_or_else(|| bad("a quorum is num/den"))?;
            let part = |p: &str| p.trim().parse::<u32>().map_err(|_| bad("a quorum is num/den"));
            Hyperparameter::Quorum(Fraction { num: part(num)?, den: part(den)? })
        }
        "commit_timeout" => Hyperparameter::CommitTimeout(small()?),
        "reveal_timeout" => Hyperparameter::RevealTimeout(small()?),
        "seal_timeout" => Hyperparameter::SealTimeout(small()?),
        "attest_timeout" => Hyperparameter::AttestTimeout(small()?),
        "min_batch_size" => Hyperparameter::MinBatchSize(int()?),
        "learning_rate_e9" => Hyperparameter::LearningRate(int()?),
        "epochs" => Hyperparameter::Epochs(small()?),
        "batch_size" => Hyperparameter::BatchSize(small()?),
        "min_gain" => Hyperparameter::MinGain(small()?),
        "proposal_cooldown" => Hyperparameter::ProposalCooldown(small()?),
        "privacy_budget" if value == "none" => Hyperparameter::PrivacyBudget(None),
        "privacy_budget" => Hyperparameter::PrivacyBudget(Some(
            privacy(value).map_err(|e| ParseError { text: text.to_string(), reason: e.reason })?,
        )),
        _ => return Err(bad("unknown hyperparameter")),
    })
}

/// The governance actions [`action`] reads, by name.
pub const ACTIONS: &str = "add_member, remove_member, revert, set_audit_anchors or set_hyperparameter";

/// A governance action by its name and its argument: a member's address (`add_member`,
/// `remove_member`), a block index (`revert`), the audit anchors' address
/// (`set_audit_anchors`), or `name=value` ([`hyperparameter`]).
///
/// # Errors
/// An unknown action, or an argument that is not what the action takes.
pub fn action(name: &str, argument: &str) -> Result<Action, ParseError> {
    Ok(match name {
        "add_member" => Action::AddMember(address(argument)?),
        "remove_member" => Action::RemoveMember(address(argument)?),
        "revert" => {
            Action::Revert(argument.trim().parse().map_err(|_| invalid(argument, "revert takes a block index"))?)
        }
        "set_audit_anchors" => Action::SetAuditAnchors(Some(address(argument)?)),
        "set_hyperparameter" => Action::SetHyperparameter(hyperparameter(argument)?),
        other => return Err(invalid(other, &format!("unknown action: {ACTIONS}"))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_read_as_typed_and_bad_ones_say_why() {
        assert_eq!(hash(&format!("0x{}", "ab".repeat(32))).unwrap(), [0xab; 32]);
        assert_eq!(hash(&"ab".repeat(32)).unwrap(), [0xab; 32]);
        assert!(hash("0xabc").unwrap_err().to_string().contains("not 32 bytes of hex"));
        assert_eq!(address(&format!(" 0x{} ", "01".repeat(20))).unwrap(), H160([1; 20]));
        assert!(address("0x01").is_err());
        assert_eq!(account(&"02".repeat(32)).unwrap(), AccountId32([2; 32]));
        let alice = "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY";
        assert_eq!(account(alice).unwrap().to_string(), alice);
        assert!(account("alice").is_err());
        assert_eq!(hyperparameter("quorum = 2/3").unwrap(), Hyperparameter::Quorum(Fraction { num: 2, den: 3 }));
        assert_eq!(hyperparameter("epochs=3").unwrap(), Hyperparameter::Epochs(3));
        assert_eq!(hyperparameter("privacy_budget=none").unwrap(), Hyperparameter::PrivacyBudget(None));
        assert_eq!(hyperparameter("min_gain=1000").unwrap(), Hyperparameter::MinGain(1000));
        assert_eq!(hyperparameter("proposal_cooldown=0").unwrap(), Hyperparameter::ProposalCooldown(0));
        assert!(matches!(hyperparameter("privacy_budget=8,1e-5"), Ok(Hyperparameter::PrivacyBudget(Some(_)))));
        assert!(hyperparameter("privacy_budget=-1,1e-5").unwrap_err().reason.contains("not negative"));
        assert!(hyperparameter("epochs=99999999999").unwrap_err().reason.contains("too large"));
        assert!(hyperparameter("speed=3").unwrap_err().reason.contains("unknown hyperparameter"));
        assert_eq!(action("revert", "4").unwrap(), Action::Revert(4));
        assert!(action("revert", "four").is_err());
        assert!(action("dissolve", "").unwrap_err().to_string().contains("unknown action"));
    }

    #[test]
    fn hyperparameter_changes_read_as_name_equals_value() {
        assert_eq!(hyperparameter("lambda_ppm=950000").unwrap(), Hyperparameter::Lambda(950_000));
        assert_eq!(hyperparameter(" quorum = 3/4 ").unwrap(), Hyperparameter::Quorum(Fraction { num: 3, den: 4 }));
        assert_eq!(hyperparameter("learning_rate_e9=5000000").unwrap(), Hyperparameter::LearningRate(5_000_000));
        let budget = PrivacySpend { epsilon: 3_500_000, delta: 10_000_000_000 };
        assert_eq!(hyperparameter("privacy_budget=3.5,1e-5").unwrap(), Hyperparameter::PrivacyBudget(Some(budget)));
        assert_eq!(hyperparameter("privacy_budget=none").unwrap(), Hyperparameter::PrivacyBudget(None));
        for bad in [
            "lambda_ppm",
            "lambda=1",
            "epochs=-1",
            "epochs=99999999999",
            "quorum=2",
            "quorum=a/b",
            "privacy_budget=3",
            "privacy_budget=-1,1e-5",
            "privacy_budget=inf,0",
        ] {
            assert!(hyperparameter(bad).is_err(), "{bad}");
        }
    }
}
