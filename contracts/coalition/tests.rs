//! Unit tests of the coalition contract on ink!'s off-chain engine: every protocol rule and its
//! edges, asserting state and events.

use crate::{
    coalition::*,
    rules::{Fraction, STRENGTH_ONE},
};
use ink::{
    env::{test, DefaultEnvironment},
    primitives::{Address, H256},
};

fn accounts() -> test::DefaultAccounts {
    test::default_accounts()
}

fn params() -> Hyperparameters {
    Hyperparameters {
        lambda_ppm: 950_000,
        validators_per_round: 3,
        quorum: Fraction::TWO_THIRDS,
        commit_timeout: 5,
        reveal_timeout: 5,
        seal_timeout: 3,
        attest_timeout: 3,
        min_batch_size: 2,
        learning_rate_e9: 10_000_000,
        epochs: 1,
        batch_size: 32,
    }
}

fn governance() -> GovernanceParams {
    GovernanceParams {
        voting_period: 4,
        enactment_delay: 2,
        quorum: Fraction { num: 1, den: 2 },
        threshold: Fraction::TWO_THIRDS,
    }
}

fn genesis(founders: Vec<Address>) -> Genesis {
    Genesis {
        architecture_hash: H256::from([0xA0; 32]),
        parameter_hash: H256::from([0xB0; 32]),
        vault_ref: b"vault://genesis".to_vec(),
        test_set_hash: H256::from([0xC0; 32]),
        test_set_size: 100,
        metric: MetricKind::Accuracy,
        higher_is_better: true,
        performance: 800_000,
        hyperparameters: params(),
        governance: governance(),
        founders,
        audit_anchors: None,
    }
}

/// Alice, Bob, Charlie and Django found a coalition; Alice deploys it.
fn founded() -> Coalition {
    let a = accounts();
    test::set_caller(a.alice);
    Coalition::new(genesis(vec![a.alice, a.bob, a.charlie, a.django])).expect("a valid genesis")
}

fn as_caller(account: Address) {
    test::set_caller(account);
}

fn advance_blocks(n: u32) {
    for _ in 0..n {
        test::advance_block::<DefaultEnvironment>();
    }
}

fn ids(seed: u8, n: u8) -> Vec<H256> {
    (0..n).map(|i| H256::from([seed.wrapping_add(i); 32])).collect()
}

fn events<E: ink::scale::Decode + ink::env::Event>() -> Vec<E> {
    test::recorded_events()
        .into_iter()
        .filter(|event| event.topics.first().copied() == E::SIGNATURE_TOPIC)
        .map(|event| E::decode(&mut &event.data[..]).expect("event decodes"))
        .collect()
}

fn report(round: u64, candidate: H256, g_metric: i64, digest: u8, accept: bool) -> Report {
    Report {
        round,
        candidate,
        g_metric,
        g_digest: H256::from([digest; 32]),
        l_metric: g_metric,
        l_size: 50,
        accept,
    }
}

const CANDIDATE: H256 = H256([0xD0; 32]);

/// Alice proposes CANDIDATE with 4 samples (data IDs from `seed`); returns the round.
fn propose(contract: &mut Coalition, seed: u8) -> Round {
    as_caller(accounts().alice);
    let parent = contract.height();
    let id = contract
        .propose(parent, CANDIDATE, b"vault://candidate".to_vec(), 4, ids(seed, 4))
        .expect("a valid proposal");
    contract.round(id).expect("the round is stored")
}

/// Every validator commits then reveals the report `make` gives it.
fn commit_and_reveal(contract: &mut Coalition, round: &Round, make: impl Fn(usize) -> Report) {
    let salt = |i: usize| [i as u8 + 1; 32];
    let validators = contract.round_validators(round.id);
    for (i, validator) in validators.iter().enumerate() {
        as_caller(*validator);
        let commitment = contract.commitment_of(*validator, make(i), salt(i));
        contract.commit(round.id, commitment).expect("commit");
    }
    for (i, validator) in validators.iter().enumerate() {
        as_caller(*validator);
        contract.reveal(round.id, make(i), salt(i)).expect("reveal");
    }
}

/// A round that every validator accepted, sealed by its general: (round, general, block hash).
fn sealed_round(contract: &mut Coalition) -> (Round, Address, H256) {
    let round = propose(contract, 1);
    commit_and_reveal(contract, &round, |_| report(round.id, CANDIDATE, 820_000, 7, true));
    let general = contract.round(round.id).unwrap().general.unwrap();
    as_caller(general);
    let hash = contract.seal(round.id, b"v".to_vec()).unwrap();
    (round, general, hash)
}

#[ink::test]
fn genesis_is_block_zero_with_equal_strengths_while_no_data() {
    let contract = founded();
    let a = accounts();
    assert_eq!(contract.height(), 0);
    let block = contract.block(0).expect("genesis block");
    assert_eq!(block.parameter_hash, H256::from([0xB0; 32]));
    assert_eq!(block.previous_hash, H256::zero());
    assert_eq!(block.contributor, None);
    // D = 0: every strength is 1/N.
    assert!(contract.strengths().iter().all(|(_, s)| *s == STRENGTH_ONE / 4));
    assert_eq!(contract.strength_of(a.eve), None);
    let appended = &events::<BlockAppended>()[0];
    assert_eq!(appended.index, 0);
    assert_eq!(appended.strengths, contract.strengths());
    assert_eq!(block.strengths_hash, hash_strengths(&appended.strengths));
    assert_eq!(
        block.block_hash,
        block_hash(0, block.timestamp, &H256::zero(), &block.parameter_hash, &None, &block.strengths_hash)
    );
    assert_eq!(events::<MemberAdded>().len(), 4);
}

#[ink::test]
fn inconsistent_genesis_is_refused() {
    let a = accounts();
    let mut wrong_direction = genesis(vec![a.alice]);
    wrong_direction.higher_is_better = false;
    assert_eq!(Coalition::new(wrong_direction).err(), Some(Error::InvalidGenesis));
    assert_eq!(Coalition::new(genesis(vec![])).err(), Some(Error::InvalidGenesis));
    assert_eq!(Coalition::new(genesis(vec![a.alice, a.alice])).err(), Some(Error::InvalidGenesis));
    let mut no_ref = genesis(vec![a.alice]);
    no_ref.vault_ref.clear();
    assert_eq!(Coalition::new(no_ref).err(), Some(Error::InvalidGenesis));
    let mut bad_k = genesis(vec![a.alice]);
    bad_k.hyperparameters.validators_per_round = MAX_VALIDATORS + 1;
    assert_eq!(Coalition::new(bad_k).err(), Some(Error::InvalidHyperparameters));
    let mut bad_quorum = genesis(vec![a.alice]);
    bad_quorum.hyperparameters.quorum = Fraction { num: 1, den: 2 };
    assert_eq!(Coalition::new(bad_quorum).err(), Some(Error::InvalidHyperparameters));
    let mut bad_governance = genesis(vec![a.alice]);
    bad_governance.governance.threshold = Fraction { num: 1, den: 2 };
    assert_eq!(Coalition::new(bad_governance).err(), Some(Error::InvalidGovernanceParams));
}

#[ink::test]
fn proposals_are_checked_before_a_round_opens() {
    let mut contract = founded();
    let a = accounts();
    let vault = b"vault://c".to_vec();
    as_caller(a.eve);
    assert_eq!(contract.propose(0, CANDIDATE, vault.clone(), 4, ids(1, 4)), Err(Error::NotMember));
    as_caller(a.alice);
    assert_eq!(contract.propose(1, CANDIDATE, vault.clone(), 4, ids(1, 4)), Err(Error::StaleParent));
    assert_eq!(contract.propose(0, CANDIDATE, vault.clone(), 1, ids(1, 1)), Err(Error::BatchTooSmall));
    assert_eq!(contract.propose(0, CANDIDATE, vault.clone(), 4, ids(1, 3)), Err(Error::DataIdCountMismatch));
    let mut duplicated = ids(1, 3);
    duplicated.push(duplicated[0]);
    assert_eq!(contract.propose(0, CANDIDATE, vault.clone(), 4, duplicated), Err(Error::DuplicateDataId));
    let too_many: Vec<H256> = (0..=MAX_DATA_IDS).map(|i| H256::from_low_u64_be(i.into())).collect();
    let n = too_many.len() as u64;
    assert_eq!(contract.propose(0, CANDIDATE, vault.clone(), n, too_many), Err(Error::TooManyDataIds));
    assert_eq!(contract.propose(0, CANDIDATE, vec![], 4, ids(1, 4)), Err(Error::InvalidVaultRef));
    assert_eq!(contract.propose(0, CANDIDATE, vec![0; 129], 4, ids(1, 4)), Err(Error::InvalidVaultRef));
    assert_eq!(contract.open_round(), None);
    assert!(events::<RoundOpened>().is_empty());

    let round = propose(&mut contract, 1);
    as_caller(a.bob);
    assert_eq!(contract.propose(0, CANDIDATE, vault, 4, ids(9, 4)), Err(Error::RoundOpen));
    assert_eq!(contract.open_round(), Some(round.id));
}

#[ink::test]
fn validators_never_include_the_proposer_and_k_caps_at_the_eligible() {
    let mut contract = founded();
    let a = accounts();
    // k = 3 with three eligible members: all of them, never Alice.
    let round = propose(&mut contract, 1);
    let mut validators = contract.round_validators(round.id);
    assert_eq!(round.validators, 3);
    validators.sort();
    let mut expected = vec![a.bob, a.charlie, a.django];
    expected.sort();
    assert_eq!(validators, expected);
    let opened = &events::<RoundOpened>()[0];
    assert_eq!((opened.round, opened.proposer, opened.candidate), (round.id, a.alice, CANDIDATE));
    assert_eq!(opened.validators, contract.round_validators(round.id));
    assert_eq!(contract.candidate_ref(round.id), Some(b"vault://candidate".to_vec()));
    assert_eq!(round.deadline, 5);

    // A coalition of one has nobody to validate.
    as_caller(a.alice);
    let mut alone = Coalition::new(genesis(vec![a.alice])).unwrap();
    assert_eq!(
        alone.propose(0, CANDIDATE, b"v".to_vec(), 4, ids(1, 4)),
        Err(Error::NoEligibleValidators)
    );
}

#[ink::test]
fn an_accepted_round_is_sealed_attested_and_appended() {
    let mut contract = founded();
    let a = accounts();
    let round = propose(&mut contract, 1);
    commit_and_reveal(&mut contract, &round, |_| report(round.id, CANDIDATE, 820_000, 7, true));

    let tallied = contract.round(round.id).unwrap();
    assert_eq!(tallied.phase, Phase::Sealing);
    assert_eq!(tallied.performance, Some(820_000));
    assert_eq!(tallied.accepts, 3);
    let general = tallied.general.unwrap();
    assert!(contract.ballot(round.id, general).unwrap().accepting);
    assert_eq!(tallied.generals_drawn, 1);
    let tally = &events::<RoundTallied>()[0];
    assert_eq!((tally.rejection, tally.performance, tally.previous_performance), (None, Some(820_000), 800_000));
    assert_eq!(events::<GeneralChosen>()[0].general, general);

    // Only the general seals.
    let validators = contract.round_validators(round.id);
    let other = *validators.iter().find(|v| **v != general).unwrap();
    as_caller(other);
    assert_eq!(contract.seal(round.id, b"vault://sealed".to_vec()), Err(Error::NotGeneral));
    as_caller(general);
    let hash = contract.seal(round.id, b"vault://sealed".to_vec()).unwrap();
    assert_eq!(contract.round(round.id).unwrap().phase, Phase::Attesting);
    assert_eq!(contract.height(), 0, "not appended before 2/3 attest");

    // A wrong hash or a second attestation is refused; the second correct one appends (2 of 3).
    as_caller(other);
    assert_eq!(contract.attest(round.id, H256::zero()), Err(Error::SealMismatch));
    contract.attest(round.id, hash).unwrap();
    as_caller(general);
    assert_eq!(contract.open_round(), None);

    assert_eq!(contract.height(), 1);
    let block = contract.block(1).unwrap();
    let genesis_block = contract.block(0).unwrap();
    assert_eq!(block.previous_hash, genesis_block.block_hash);
    assert_eq!((block.parameter_hash, block.contributor, block.samples), (CANDIDATE, Some(a.alice), 4));
    assert_eq!(block.vault_ref, b"vault://sealed".to_vec());
    assert_eq!(block.performance, 820_000);
    assert_eq!(
        block.block_hash,
        block_hash(1, block.timestamp, &block.previous_hash, &CANDIDATE, &Some(a.alice), &block.strengths_hash)
    );
    assert_eq!(block.block_hash, hash);
    assert_eq!(contract.seal_of(round.id).map(|s| s.block_hash), Some(hash));
    // D = 4, all Alice's: S_alice = 1/4 + 1, others 1/4.
    assert_eq!(contract.strength_of(a.alice), Some(STRENGTH_ONE / 4 + STRENGTH_ONE));
    assert_eq!(contract.strength_of(a.bob), Some(STRENGTH_ONE / 4));
    assert_eq!(block.strengths_hash, hash_strengths(&contract.strengths()));
    assert_eq!(contract.data_id_block(ids(1, 1)[0]), Some(1));
    assert_eq!(contract.round(round.id).unwrap().phase, Phase::Appended);
    assert_eq!(contract.round(round.id).unwrap().block, Some(1));
    let appended = events::<BlockAppended>();
    assert_eq!(appended.last().map(|b| (b.index, b.round)), Some((1, Some(round.id))));
    assert_eq!(appended.last().map(|b| b.strengths.clone()), Some(contract.strengths()));
    assert_eq!(events::<Committed>().len(), 3);
    assert_eq!(events::<Revealed>().len(), 3);
    assert_eq!(events::<Attested>().len(), 1);
    assert_eq!(events::<StrengthsUpdated>().last().map(|s| s.total_samples), Some(4));

    // Data IDs of an appended block cannot be used again; the old tip is stale now.
    as_caller(a.bob);
    assert_eq!(contract.propose(1, CANDIDATE, b"v".to_vec(), 4, ids(1, 4)), Err(Error::DataIdUsed));
    assert_eq!(contract.propose(0, CANDIDATE, b"v".to_vec(), 4, ids(50, 4)), Err(Error::StaleParent));
}

#[ink::test]
fn a_degrading_candidate_is_rejected_by_the_lambda_rule() {
    let mut contract = founded();
    let round = propose(&mut contract, 1);
    // 0.70 < 0.95 * 0.80: degraded, even though every validator accepts.
    commit_and_reveal(&mut contract, &round, |_| report(round.id, CANDIDATE, 700_000, 7, true));
    let state = contract.round(round.id).unwrap();
    assert_eq!(state.phase, Phase::Rejected(Rejection::Degrades));
    assert_eq!(contract.height(), 0);
    assert_eq!(contract.open_round(), None);
    let tally = &events::<RoundTallied>()[0];
    assert_eq!((tally.rejection, tally.performance), (Some(Rejection::Degrades), Some(700_000)));
    // The data IDs were not used: they can be proposed again.
    propose(&mut contract, 1);
}

#[ink::test]
fn disagreeing_g_digests_reject_or_mark_deviants() {
    // Three different digests: no 2/3 majority.
    let mut contract = founded();
    let round = propose(&mut contract, 1);
    commit_and_reveal(&mut contract, &round, |i| report(round.id, CANDIDATE, 820_000, i as u8, true));
    assert_eq!(contract.round(round.id).unwrap().phase, Phase::Rejected(Rejection::InconsistentPredictions));
    assert_eq!(events::<RoundTallied>()[0].performance, None);

    // Two agree, one deviates: recorded, and its vote does not count (2 of 3 still accept).
    let round = propose(&mut contract, 10);
    let deviant = contract.round_validators(round.id)[2];
    commit_and_reveal(&mut contract, &round, |i| {
        report(round.id, CANDIDATE, 820_000, if i == 2 { 9 } else { 7 }, true)
    });
    let state = contract.round(round.id).unwrap();
    assert_eq!(state.deviants, 1);
    assert_eq!(state.accepts, 2);
    let ballot = contract.ballot(round.id, deviant).unwrap();
    assert!(ballot.deviant && !ballot.accepting);
    assert_eq!(state.phase, Phase::Sealing);
    assert_eq!(events::<ValidatorDeviated>()[0].validator, deviant);
}

#[ink::test]
fn too_few_accept_votes_reject_and_two_thirds_exactly_accepts() {
    let mut contract = founded();
    // One accept of three: rejected.
    let round = propose(&mut contract, 1);
    commit_and_reveal(&mut contract, &round, |i| report(round.id, CANDIDATE, 820_000, 7, i == 0));
    assert_eq!(contract.round(round.id).unwrap().phase, Phase::Rejected(Rejection::NotEnoughVotes));
    // Two of three (exactly 2/3): accepted.
    let round = propose(&mut contract, 10);
    commit_and_reveal(&mut contract, &round, |i| report(round.id, CANDIDATE, 820_000, 7, i != 0));
    assert_eq!(contract.round(round.id).unwrap().phase, Phase::Sealing);
}

#[ink::test]
fn commits_and_reveals_are_checked() {
    let mut contract = founded();
    let a = accounts();
    let round = propose(&mut contract, 1);
    let v = contract.round_validators(round.id);
    let good = report(round.id, CANDIDATE, 820_000, 7, true);
    let salt = [5u8; 32];

    as_caller(a.alice);
    assert_eq!(contract.commit(round.id, H256::zero()), Err(Error::NotValidator));
    as_caller(v[0]);
    assert_eq!(contract.commit(round.id + 1, H256::zero()), Err(Error::WrongRound));
    assert_eq!(contract.reveal(round.id, good, salt), Err(Error::WrongPhase));
    contract.commit(round.id, commitment(&v[0], &good, &salt)).unwrap();
    assert_eq!(contract.commit(round.id, H256::zero()), Err(Error::AlreadyCommitted));
    // A commitment copied by another validator does not open to that validator's reveal.
    as_caller(v[1]);
    contract.commit(round.id, commitment(&v[0], &good, &salt)).unwrap();
    as_caller(v[2]);
    contract.commit(round.id, commitment(&v[2], &good, &salt)).unwrap();
    assert_eq!(contract.round(round.id).unwrap().phase, Phase::Reveal);

    as_caller(v[1]);
    assert_eq!(contract.reveal(round.id, good, salt), Err(Error::CommitmentMismatch));
    as_caller(v[0]);
    assert_eq!(contract.reveal(round.id, good, [6; 32]), Err(Error::CommitmentMismatch), "wrong salt");
    let other_round = Report { round: round.id + 1, ..good };
    assert_eq!(contract.reveal(round.id, other_round, salt), Err(Error::ReportMismatch));
    let other_candidate = Report { candidate: H256::zero(), ..good };
    assert_eq!(contract.reveal(round.id, other_candidate, salt), Err(Error::ReportMismatch));
    contract.reveal(round.id, good, salt).unwrap();
    assert_eq!(contract.reveal(round.id, good, salt), Err(Error::AlreadyRevealed));
    assert_eq!(contract.ballot(round.id, v[0]).unwrap().report, Some(good));

    // Late: after the reveal deadline nothing is accepted.
    advance_blocks(6);
    as_caller(v[2]);
    assert_eq!(contract.reveal(round.id, good, salt), Err(Error::DeadlinePassed));
    assert_eq!(events::<Revealed>().len(), 1);
}

#[ink::test]
fn deadlines_move_rounds_on() {
    let mut contract = founded();
    let a = accounts();
    // Nobody commits: the round fails at the commit deadline.
    propose(&mut contract, 1);
    as_caller(a.eve);
    assert_eq!(contract.advance(), Err(Error::DeadlineNotReached));
    advance_blocks(6);
    assert_eq!(contract.advance(), Ok(Phase::Failed(Failure::NoCommits)));
    assert_eq!(events::<RoundFailed>()[0].reason, Failure::NoCommits);
    assert_eq!(contract.advance(), Err(Error::NoOpenRound));

    // One commits and reveals, the others stay silent: tallied at the reveal deadline; one
    // accept of k = 3 is not enough.
    let round = propose(&mut contract, 10);
    let validators = contract.round_validators(round.id);
    let v = validators[0];
    let good = report(round.id, CANDIDATE, 820_000, 7, true);
    as_caller(v);
    contract.commit(round.id, commitment(&v, &good, &[1; 32])).unwrap();
    advance_blocks(6);
    as_caller(validators[1]);
    assert_eq!(contract.commit(round.id, H256::zero()), Err(Error::DeadlinePassed), "late commit");
    assert_eq!(contract.advance(), Ok(Phase::Reveal));
    as_caller(v);
    contract.reveal(round.id, good, [1; 32]).unwrap();
    // Its reveal was the only one committed: tallied at once.
    assert_eq!(contract.round(round.id).unwrap().phase, Phase::Rejected(Rejection::NotEnoughVotes));

    // Committed but never revealed: no reveals.
    let round = propose(&mut contract, 20);
    for validator in &contract.round_validators(round.id) {
        as_caller(*validator);
        contract.commit(round.id, H256::zero()).unwrap();
    }
    advance_blocks(6);
    assert_eq!(contract.advance(), Ok(Phase::Failed(Failure::NoReveals)));
}

#[ink::test]
fn a_silent_general_is_replaced_until_none_is_left() {
    let mut contract = founded();
    let round = propose(&mut contract, 1);
    commit_and_reveal(&mut contract, &round, |_| report(round.id, CANDIDATE, 820_000, 7, true));
    let first = contract.round(round.id).unwrap().general.unwrap();

    advance_blocks(4);
    as_caller(first);
    assert_eq!(contract.seal(round.id, b"v".to_vec()), Err(Error::DeadlinePassed));
    assert_eq!(contract.advance(), Ok(Phase::Sealing));
    let second = contract.round(round.id).unwrap().general.unwrap();
    assert_ne!(first, second);
    as_caller(first);
    assert_eq!(contract.seal(round.id, b"v".to_vec()), Err(Error::NotGeneral), "the old general is out");

    advance_blocks(4);
    assert_eq!(contract.advance(), Ok(Phase::Sealing));
    let third = contract.round(round.id).unwrap();
    assert_eq!(third.generals_drawn, 3);
    assert!(third.general != Some(first) && third.general != Some(second));
    advance_blocks(4);
    assert_eq!(contract.advance(), Ok(Phase::Failed(Failure::NoGeneral)));
    assert_eq!(events::<GeneralChosen>().len(), 3);
    assert_eq!(contract.height(), 0);
}

#[ink::test]
fn a_sealed_block_without_enough_attestations_fails() {
    let mut contract = founded();
    let (round, general, hash) = sealed_round(&mut contract);
    assert_eq!(contract.attest(round.id, hash), Err(Error::AlreadyAttested), "the seal attests");
    advance_blocks(4);
    assert_eq!(contract.advance(), Ok(Phase::Failed(Failure::NotAttested)));
    assert_eq!(contract.height(), 0);
}

/// Propose, let Alice, Bob and Charlie vote as given, then try to enact after the delay.
fn decide(contract: &mut Coalition, action: Action, votes: &[(Address, bool)]) -> Result<ProposalStatus> {
    as_caller(accounts().alice);
    let id = contract.propose_action(action)?;
    for (voter, aye) in votes {
        as_caller(*voter);
        contract.vote(id, *aye)?;
    }
    advance_blocks(7);
    contract.enact(id)
}

#[ink::test]
fn governance_enforces_quorum_threshold_period_and_delay() {
    let mut contract = founded();
    let a = accounts();
    let lambda = Action::SetHyperparameter(Hyperparameter::Lambda(900_000));

    // One vote of four members: below the 1/2 quorum.
    assert_eq!(decide(&mut contract, lambda, &[(a.alice, true)]), Ok(ProposalStatus::Rejected(ProposalRejection::QuorumNotMet)));
    // Quorum met, but 1 aye of 2 is below the 2/3 threshold.
    assert_eq!(
        decide(&mut contract, lambda, &[(a.alice, true), (a.bob, false)]),
        Ok(ProposalStatus::Rejected(ProposalRejection::ThresholdNotMet))
    );
    assert_eq!(contract.hyperparameters().lambda_ppm, 950_000);

    // Passes: not before voting ends, not before the delay, then enacted.
    as_caller(a.bob);
    let id = contract.propose_action(lambda).unwrap();
    for voter in [a.alice, a.bob, a.charlie] {
        as_caller(voter);
        contract.vote(id, true).unwrap();
    }
    as_caller(a.charlie);
    assert_eq!(contract.vote(id, false), Err(Error::AlreadyVoted));
    as_caller(a.eve);
    assert_eq!(contract.vote(id, true), Err(Error::NotMember));
    assert_eq!(contract.enact(id), Err(Error::VotingOpen));
    advance_blocks(5);
    as_caller(a.django);
    assert_eq!(contract.vote(id, true), Err(Error::VotingEnded));
    assert_eq!(contract.enact(id), Err(Error::EnactmentNotDue));
    advance_blocks(2);
    assert_eq!(contract.enact(id), Ok(ProposalStatus::Enacted));
    assert_eq!(contract.enact(id), Err(Error::ProposalClosed));
    assert_eq!(contract.hyperparameters().lambda_ppm, 900_000);
    assert_eq!(events::<ProposalEnacted>().len(), 1);
    assert_eq!(events::<ProposalRejected>().len(), 2);
    assert_eq!(events::<Voted>().len(), 6);

    // Out-of-range values are refused at proposal time.
    as_caller(a.alice);
    let bad = Action::SetHyperparameter(Hyperparameter::Lambda(1_000_001));
    assert_eq!(contract.propose_action(bad), Err(Error::InvalidHyperparameters));
    as_caller(a.eve);
    assert_eq!(contract.propose_action(lambda), Err(Error::NotMember));
}

#[ink::test]
fn members_join_and_leave_through_governance_between_rounds() {
    let mut contract = founded();
    let a = accounts();
    let everyone = [(a.alice, true), (a.bob, true), (a.charlie, true)];
    assert_eq!(decide(&mut contract, Action::AddMember(a.eve), &everyone), Ok(ProposalStatus::Enacted));
    assert_eq!(contract.members().len(), 5);
    assert_eq!(contract.strength_of(a.eve), Some(STRENGTH_ONE / 5));
    as_caller(a.alice);
    assert_eq!(contract.propose_action(Action::AddMember(a.eve)), Err(Error::AlreadyMember));

    // While a round is open, a removal passes the vote but waits.
    propose(&mut contract, 1);
    assert_eq!(decide(&mut contract, Action::RemoveMember(a.eve), &everyone), Err(Error::RoundOpen));
    assert_eq!(contract.members().len(), 5);

    let mut small = {
        as_caller(a.alice);
        Coalition::new(genesis(vec![a.alice])).unwrap()
    };
    as_caller(a.alice);
    assert_eq!(small.propose_action(Action::RemoveMember(a.alice)), Err(Error::LastMember));
    assert!(events::<MemberRemoved>().is_empty());
}

#[ink::test]
fn a_revert_appends_an_earlier_blocks_parameters() {
    let mut contract = founded();
    let (round, general, hash) = sealed_round(&mut contract);
    let other = *contract.round_validators(round.id).iter().find(|v| **v != general).unwrap();
    as_caller(other);
    contract.attest(round.id, hash).unwrap();
    assert_eq!(contract.height(), 1);

    let a = accounts();
    as_caller(a.alice);
    assert_eq!(contract.propose_action(Action::Revert(1)), Err(Error::InvalidRevert));
    let everyone = [(a.alice, true), (a.bob, true), (a.charlie, true)];
    assert_eq!(decide(&mut contract, Action::Revert(0), &everyone), Ok(ProposalStatus::Enacted));
    assert_eq!(contract.height(), 2);
    let reverted = contract.block(2).unwrap();
    let genesis_block = contract.block(0).unwrap();
    assert_eq!(reverted.parameter_hash, genesis_block.parameter_hash);
    assert_eq!(reverted.vault_ref, genesis_block.vault_ref);
    assert_eq!(reverted.performance, genesis_block.performance);
    assert_eq!((reverted.contributor, reverted.round), (None, None));
    assert_eq!(reverted.previous_hash, contract.block(1).unwrap().block_hash);
}

#[test]
fn every_stored_value_fits_a_storage_item() {
    use ink::scale::Encode;
    let big = Address::from([0xFF; 20]);
    let hash = H256::from([0xFF; 32]);
    let sizes = [
        (
            "Round",
            Round {
                id: u64::MAX,
                proposer: big,
                parent: u32::MAX,
                parent_hash: hash,
                candidate: hash,
                samples: u64::MAX,
                validators: MAX_VALIDATORS,
                seed: hash,
                params: params(),
                phase: Phase::Rejected(Rejection::InconsistentPredictions),
                deadline: u32::MAX,
                commits: u32::MAX,
                reveals: u32::MAX,
                performance: Some(i64::MIN),
                accepts: u32::MAX,
                deviants: u32::MAX,
                generals_drawn: u32::MAX,
                general: Some(big),
                attestations: u32::MAX,
                block: Some(u32::MAX),
            }
            .encoded_size(),
        ),
        ("validators", vec![big; MAX_VALIDATORS as usize].encoded_size()),
        ("vault reference", vec![0u8; MAX_VAULT_REF as usize].encoded_size()),
        (
            "ModelBlock",
            ModelBlock {
                index: u32::MAX,
                timestamp: u64::MAX,
                previous_hash: hash,
                parameter_hash: hash,
                vault_ref: vec![0; MAX_VAULT_REF as usize],
                contributor: Some(big),
                samples: u64::MAX,
                strengths_hash: hash,
                performance: i64::MIN,
                round: Some(u64::MAX),
                block_hash: hash,
            }
            .encoded_size(),
        ),
        (
            "Seal",
            Seal { vault_ref: vec![0; MAX_VAULT_REF as usize], timestamp: 0, block_hash: hash, strengths_hash: hash }
                .encoded_size(),
        ),
        (
            "Ballot",
            Ballot {
                commitment: Some(hash),
                report: Some(report(u64::MAX, hash, i64::MIN, 0xFF, true)),
                attested: true,
                deviant: true,
                accepting: true,
                drawn_as_general: true,
            }
            .encoded_size(),
        ),
        (
            "Proposal",
            Proposal {
                id: u32::MAX,
                proposer: big,
                action: Action::SetGovernance(governance()),
                voting_ends: u32::MAX,
                electorate: u32::MAX,
                ayes: u32::MAX,
                nays: u32::MAX,
                status: ProposalStatus::Rejected(ProposalRejection::QuorumNotMet),
            }
            .encoded_size(),
        ),
        ("Member", Member { account: big, samples: u64::MAX }.encoded_size()),
        (
            // The root struct's plain fields (the mappings add nothing to it).
            "root",
            (
                EvaluationSpec {
                    architecture_hash: hash,
                    test_set_hash: hash,
                    test_set_size: u32::MAX,
                    metric: MetricKind::Iou,
                    higher_is_better: true,
                },
                params(),
                governance(),
                (u32::MAX, u32::MAX, Some(u64::MAX), u64::MAX, u32::MAX, u32::MAX, Some(big)),
            )
                .encoded_size(),
        ),
    ];
    for (what, size) in sizes {
        assert!(size <= MAX_STORAGE_VALUE, "{what}: {size} bytes > {MAX_STORAGE_VALUE}");
    }
}
