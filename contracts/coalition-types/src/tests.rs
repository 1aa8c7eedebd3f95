//! Tests of the rules, each alone, and property-based tests of the tally against a lying
//! minority (the guarantees stated in [`crate::rules`]).

use crate::{
    rdp, rules::*, Address, Deviation, DpDeclaration, Error, EvaluationSpec, Fraction, MetricKind, PrivacySpend,
    Refusal, Rejection, Report, Scores, TestKeccak, Verdict, H256, METRIC_ONE,
};
use proptest::prelude::*;

fn address(byte: u8) -> Address {
    Address::from([byte; 20])
}

#[test]
fn strengths_sum_to_two_with_data_and_one_without() {
    assert_eq!(strength(4, 0, 0), STRENGTH_ONE / 4);
    assert_eq!(strength(0, 5, 10), 0);
    let samples = [100u64, 300, 600];
    let total: u64 = samples.iter().sum();
    let sum: u64 = samples.iter().map(|d| strength(3, *d, total)).sum();
    // 1/N terms sum to 1, D_i/D terms to 1; floor rounding loses at most one part per term.
    assert!((2 * STRENGTH_ONE - 6..=2 * STRENGTH_ONE).contains(&sum), "{sum}");
    assert_eq!(strength(3, 600, 1000), STRENGTH_ONE / 3 + STRENGTH_ONE * 6 / 10);
}

fn spend(epsilon: u64, delta: u64) -> PrivacySpend {
    PrivacySpend { epsilon, delta }
}

/// A declaration of `rdp` nats at every order.
fn declared(rdp: u64) -> DpDeclaration {
    DpDeclaration { noise_multiplier: 1.0f32.to_bits(), clip_norm: 1.0f32.to_bits(), rdp: [rdp; rdp::RDP_ORDERS] }
}

/// The conversion's constant at order `centi / 100` and a real delta, in f64.
fn real_conversion(centi: u32, delta: f64) -> f64 {
    let alpha = f64::from(centi) / 100.0;
    (1.0 / delta).ln() / (alpha - 1.0) + (1.0 - 1.0 / alpha).ln() - alpha.ln() / (alpha - 1.0)
}

/// The epsilon of RDP `totals` at a real delta, in f64: the least over the finite orders.
fn real_epsilon(totals: &rdp::Rdp, delta: f64) -> f64 {
    rdp::RDP_ORDERS_CENTI
        .iter()
        .zip(totals)
        .filter(|(_, &t)| t != rdp::INFINITE)
        .map(|(&centi, &t)| t as f64 / rdp::RDP_ONE as f64 + real_conversion(centi, delta).max(0.0))
        .fold(f64::INFINITY, f64::min)
}

#[test]
fn the_order_constants_bound_the_real_ones() {
    for (centi, term) in rdp::RDP_ORDERS_CENTI.into_iter().zip(rdp::ORDER_TERMS) {
        let alpha = f64::from(centi) / 100.0;
        let real = ((1.0 - 1.0 / alpha).ln() - alpha.ln() / (alpha - 1.0)) * rdp::RDP_ONE as f64;
        assert!(term as f64 >= real - 1e-5 && (term as f64) < real + 1.00001, "order {alpha}: {term} vs {real}");
    }
    assert!(rdp::RDP_ORDERS_CENTI.windows(2).all(|w| w[0] < w[1]) && rdp::RDP_ORDERS_CENTI[0] > 100);
}

#[test]
fn the_conversion_bounds_the_real_one_at_every_budget_delta() {
    for delta_units in
        [1, 7, 1_000, 10_000_000_000, 123_456_789_012, rdp::MAX_BUDGET_DELTA, PrivacySpend::DELTA_ONE - 1]
    {
        let delta = delta_units as f64 / PrivacySpend::DELTA_ONE as f64;
        let constants = rdp::conversion(delta_units).unwrap();
        for (centi, constant) in rdp::RDP_ORDERS_CENTI.into_iter().zip(constants) {
            let real = real_conversion(centi, delta).max(0.0) * rdp::RDP_ONE as f64;
            // Never below the real constant; above it by rounding only (ln's last bits, the
            // divisions rounded up).
            assert!(constant as f64 >= real - 1e-3, "delta {delta}, order {centi}: {constant} < {real}");
            assert!((constant as f64) < real + 64.0, "delta {delta}, order {centi}: {constant} vs {real}");
        }
    }
    for bad in [0, PrivacySpend::DELTA_ONE, u64::MAX] {
        assert_eq!(rdp::conversion(bad), None, "{bad}");
        assert_eq!(rdp::epsilon(&[1; rdp::RDP_ORDERS], bad), None, "{bad}");
    }
}

proptest! {
    /// `ln_down` is a lower bound of ln, and a close one, over the whole `u64` range.
    #[test]
    fn ln_down_never_exceeds_ln(x in 1u64..) {
        let real = (x as f64).ln() * rdp::RDP_ONE as f64;
        let bound = rdp::ln_down(x) as f64;
        // f64's ln is within 1 ulp: 2^-46 relative at 44 nats is 1e-3 units.
        prop_assert!(bound <= real + 1e-2, "{x}: {bound} > {real}");
        prop_assert!(bound > real - 4.0, "{x}: {bound} far below {real}");
    }

    /// The chain's epsilon is the real conversion of its totals, rounded up, whatever the totals
    /// (a member chooses them by what it declares) and the delta.
    #[test]
    fn the_chain_epsilon_never_falls_below_the_real_conversion(
        totals in proptest::array::uniform32(prop_oneof![0u64..100_000_000_000, Just(rdp::INFINITE)]),
        delta_units in 1u64..=rdp::MAX_BUDGET_DELTA,
    ) {
        let delta = delta_units as f64 / PrivacySpend::DELTA_ONE as f64;
        let real = real_epsilon(&totals, delta);
        match rdp::epsilon(&totals, delta_units) {
            None => prop_assert!(real.is_infinite()),
            Some(0) if totals.iter().all(|&t| t == 0) => {}
            Some(chain) => {
                let chain = chain as f64 / PrivacySpend::EPSILON_ONE as f64;
                prop_assert!(chain >= real - 1e-9, "{chain} < {real}");
                prop_assert!(chain <= real + 2e-6, "{chain} > {real}");
            }
        }
    }

    /// Composing two declarations is adding them: their order of arrival does not matter, nor
    /// whether they arrive as one.
    #[test]
    fn composition_adds_order_by_order(
        a in proptest::array::uniform32(0u64..=u64::MAX),
        b in proptest::array::uniform32(0u64..=u64::MAX),
    ) {
        let ab = rdp::compose(&a, &b);
        prop_assert_eq!(ab, rdp::compose(&b, &a));
        for ((&x, &y), &t) in a.iter().zip(&b).zip(&ab) {
            prop_assert_eq!(t, x.saturating_add(y));
        }
    }
}

#[test]
fn privacy_spends_compose_within_the_budget() {
    let delta = 10_000_000_000; // 1e-5
    let one_nat = rdp::RDP_ONE;
    // One nat at every order: epsilon = 1 + the least conversion constant.
    let least = rdp::conversion(delta).unwrap().into_iter().min().unwrap();
    let once = (one_nat + least).div_ceil(1_000);
    let budget = Some(spend(once, delta));
    let zero = [0; rdp::RDP_ORDERS];
    let first = spend_privacy(&zero, Some(&declared(one_nat)), budget).unwrap();
    assert_eq!(first.totals, [one_nat; rdp::RDP_ORDERS]);
    assert_eq!(first.spent, spend(once, delta), "exactly at the budget passes");
    assert_eq!(first.spend, Some(spend(once, delta)));
    // One millionth of a nat more at every order passes the budget.
    assert_eq!(spend_privacy(&first.totals, Some(&declared(1_000)), budget), Err(Error::PrivacyBudgetExceeded));
    // A budget needs a declaration; a declaration without noise (infinite RDP) never fits one.
    assert_eq!(spend_privacy(&zero, None, budget), Err(Error::PrivacyBudgetExceeded));
    let infinite = Some(spend(u64::MAX, delta));
    assert_eq!(spend_privacy(&zero, Some(&declared(rdp::INFINITE)), infinite), Err(Error::PrivacyBudgetExceeded));
    // Without a budget anything is recorded, at the report delta; nothing declared is nothing.
    let free = spend_privacy(&first.totals, Some(&declared(rdp::INFINITE)), None).unwrap();
    assert_eq!(free.spent, spend(u64::MAX, rdp::REPORT_DELTA));
    assert_eq!(free.totals, [rdp::INFINITE; rdp::RDP_ORDERS]);
    let nothing = spend_privacy(&zero, None, None).unwrap();
    assert_eq!((nothing.totals, nothing.spent, nothing.spend), (zero, PrivacySpend::default(), None));
    // Two proposals compose in RDP: less than their epsilons added.
    let two = spend_privacy(&first.totals, Some(&declared(one_nat)), None).unwrap();
    let (two_eps, one_eps) = (two.spent.epsilon, two.spend.unwrap().epsilon);
    assert!(two_eps > one_eps && two_eps < 2 * one_eps, "{two_eps} vs 2 × {one_eps}");
}

#[test]
fn real_privacy_spends_round_up() {
    assert_eq!(PrivacySpend::from_real(2.5966, 1e-5), Some(spend(2_596_600, 10_000_000_000)));
    assert_eq!(PrivacySpend::from_real(0.000_000_1, 0.0), Some(spend(1, 0)), "never rounded down to free");
    assert_eq!(PrivacySpend::from_real(1.25, 0.5).map(|s| (s.epsilon_real(), s.delta_real())), Some((1.25, 0.5)));
    for bad in [-1.0, f64::NAN, f64::INFINITY, 1e20] {
        assert_eq!(PrivacySpend::from_real(bad, 1e-5), None, "{bad}");
        assert_eq!(PrivacySpend::from_real(1.0, bad), None, "{bad}");
    }
}

proptest! {
    /// Whatever a member declares, in any order, at the extremes too, what it has spent never
    /// passes the budget, and a refused proposal changes nothing.
    #[test]
    fn no_sequence_of_proposals_spends_past_the_budget(
        budget in (0u64..30_000_000, 1u64..=rdp::MAX_BUDGET_DELTA),
        declarations in proptest::collection::vec(
            proptest::option::of(proptest::array::uniform32(prop_oneof![
                0u64..5_000_000_000,
                Just(0),
                Just(rdp::INFINITE),
                (u64::MAX - 10)..u64::MAX,
            ])),
            0..20,
        ),
    ) {
        let budget = spend(budget.0, budget.1);
        let mut totals = [0u64; rdp::RDP_ORDERS];
        let mut spent = PrivacySpend::default();
        for rdp in declarations {
            let declaration = rdp.map(|rdp| DpDeclaration { rdp, ..declared(0) });
            if let Ok(after) = spend_privacy(&totals, declaration.as_ref(), Some(budget)) {
                prop_assert!(after.totals.iter().zip(&totals).all(|(a, b)| a >= b));
                prop_assert!(after.spent.epsilon >= spent.epsilon || spent == PrivacySpend::default());
                (totals, spent) = (after.totals, after.spent);
            }
            prop_assert!(spent.epsilon <= budget.epsilon);
            // The true conversion of the composed totals, in f64, is what was spent at most.
            let delta = budget.delta as f64 / PrivacySpend::DELTA_ONE as f64;
            let real = real_epsilon(&totals, delta);
            if totals.iter().any(|&t| t != 0) {
                prop_assert!(spent.epsilon as f64 / PrivacySpend::EPSILON_ONE as f64 >= real - 1e-9, "{:?} < {}", spent, real);
            }
        }
    }
}

#[test]
fn fractions_compare_without_rounding() {
    let q = Fraction::TWO_THIRDS;
    assert!(q.reached_by(2, 3) && q.reached_by(4, 6) && q.reached_by(3, 3));
    assert!(!q.reached_by(1, 2) && !q.reached_by(3, 5) && !q.reached_by(0, 0));
    assert!(q.is_majority() && Fraction { num: 1, den: 1 }.is_majority());
    assert!(!Fraction::HALF.is_majority());
    assert!(!Fraction { num: 3, den: 2 }.is_majority() && !Fraction { num: 0, den: 0 }.is_majority());
    assert!(q.within(Fraction::TWO_THIRDS) && Fraction { num: 3, den: 4 }.within(q));
    assert!(!Fraction { num: 3, den: 5 }.within(q) && !Fraction { num: 5, den: 4 }.within(q));
    assert!(Fraction::HALF.within(Fraction::HALF) && !Fraction { num: 1, den: 3 }.within(Fraction::HALF));
}

#[test]
fn draws_below_a_bound_are_in_range_and_roughly_uniform() {
    let mut stream = RandomStream::<TestKeccak>::new([7; 32]);
    let mut counts = [0u32; 3];
    for _ in 0..3000 {
        counts[stream.below(3) as usize] += 1;
    }
    assert!(counts.iter().all(|c| (850..=1150).contains(c)), "{counts:?}");
    assert_eq!(stream.below(1), 0);
    assert_eq!(stream.below(0), 0);
    let (mut a, mut b) = (RandomStream::<TestKeccak>::new([1; 32]), RandomStream::<TestKeccak>::new([1; 32]));
    assert!((0..10).all(|_| a.next_u64() == b.next_u64()), "the same seed gives the same stream");
}

#[test]
fn selection_is_without_replacement_and_follows_weights() {
    let candidates = [(address(1), 1), (address(2), 1), (address(3), 8)];
    let chosen = select_weighted::<TestKeccak>(&candidates, 2, [3; 32]);
    assert_eq!(chosen.len(), 2);
    assert_ne!(chosen[0], chosen[1]);
    let mut all = select_weighted::<TestKeccak>(&candidates, 10, [3; 32]);
    all.sort();
    assert_eq!(all, vec![address(1), address(2), address(3)], "k beyond the candidates: everyone, once");
    let first_heavy =
        (0u8..200).filter(|s| select_weighted::<TestKeccak>(&candidates, 1, [*s; 32])[0] == address(3)).count();
    assert!((140..=185).contains(&first_heavy), "the heavy candidate first in about 80%: {first_heavy}");
    assert!(select_weighted::<TestKeccak>(&[], 3, [0; 32]).is_empty());
    assert_eq!(select_weighted::<TestKeccak>(&[(address(9), 0)], 1, [0; 32]), vec![address(9)]);
}

#[test]
fn majorities_and_medians() {
    let (a, b) = (1u8, 2u8);
    assert_eq!(majority(&[a, a, b], 3, Fraction::TWO_THIRDS), Some(a));
    assert_eq!(majority(&[a, b], 2, Fraction::TWO_THIRDS), None);
    assert_eq!(majority(&[a, a], 4, Fraction::TWO_THIRDS), None, "the total counts the silent too");
    assert_eq!(majority::<u8>(&[], 0, Fraction::TWO_THIRDS), None);
    assert_eq!(median(&[5, 1, 3], true), Some(3));
    assert_eq!(median(&[4, 1, 3, 2], true), Some(2), "the worse middle when higher is better");
    assert_eq!(median(&[4, 1, 3, 2], false), Some(3), "the worse middle for an error");
    assert_eq!(median(&[], true), None);
}

#[test]
fn local_views_weigh_l_at_most_as_g() {
    // G: 0.9 on 100 samples; L: 0.6 on 50 → 0.8.
    assert_eq!(local_view(900_000, 100, 600_000, 50), Some(800_000));
    assert_eq!(local_view(900_000, 100, 0, 0), Some(900_000));
    // An L of 10^7 weighs as G's 100: the view is halfway, never L alone.
    assert_eq!(local_view(800_000, 100, 1_000_000, 10_000_000), Some(900_000));
    assert_eq!(local_view(1, 0, 5, 0), None);
    assert_eq!(local_view(i64::MAX, u32::MAX, i64::MAX, u32::MAX), Some(i64::MAX));
    assert_eq!(local_view(i64::MIN, u32::MAX, i64::MIN, u32::MAX), Some(i64::MIN));
    let spec = spec(MetricKind::Accuracy, 0);
    // Best 0.80, lambda 0.95: a view of 0.76 keeps, 0.75 does not.
    assert!(local_vote(800_000, 720_000, 100, &spec, 800_000, 950_000));
    assert!(!local_vote(800_000, 700_000, 100, &spec, 800_000, 950_000));
}

#[test]
fn weight_standing_credit_and_lineage() {
    assert_eq!(draw_weight(900, 0), 900);
    assert_eq!(draw_weight(900, 2), 300);
    assert_eq!(draw_weight(900, 99), 225, "faults count up to MAX_FAULTS");
    assert_eq!(standing_after(0, Some(Deviation::Silent)), 1);
    assert_eq!(standing_after(0, Some(Deviation::Digest)), 1);
    assert_eq!(standing_after(crate::MAX_FAULTS, Some(Deviation::GMetric)), crate::MAX_FAULTS);
    assert_eq!(standing_after(2, Some(Deviation::Refused)), 2, "a refusal is recorded, not a fault");
    assert_eq!((standing_after(2, None), standing_after(0, None)), (1, 0));
    assert_eq!(lineage_best(800, 700, true), 800);
    assert_eq!(lineage_best(800, 900, true), 900);
    assert_eq!(lineage_best(800, 700, false), 700, "errors: lower is better");
    // Credit: the gain over the mark must reach the margin: min_gain, the tolerance, one G sample.
    let accuracy = spec(MetricKind::Accuracy, 0);
    assert_eq!(credit_margin(1_000, &accuracy), 10_000, "one sample of a G of 100");
    assert_eq!(credit_margin(20_000, &accuracy), 20_000);
    assert_eq!(credit_margin(1, &spec(MetricKind::Accuracy, 30_000)), 30_000, "a gain within the tolerance is noise");
    assert_eq!(credit_margin(0, &spec(MetricKind::Mse, 0)), 1);
    assert!(earns_strength(810_000, 800_000, 10_000, true));
    assert!(!earns_strength(809_999, 800_000, 10_000, true));
    assert!(!earns_strength(800_000, 800_000, 0, true), "no gain earns nothing");
    assert!(earns_strength(99, 100, 1, false) && !earns_strength(101, 100, 1, false));
    assert!(!earns_strength(i64::MIN, i64::MAX, 1, true) && earns_strength(i64::MAX, i64::MIN, u32::MAX, true));
}

#[test]
fn void_claims_are_reserved_for_their_proposer() {
    use crate::{Phase, CLAIM_RESERVE};
    let (proposer, other) = (address(1), address(2));
    let rejected = Phase::Rejected(Rejection::NotEnoughVotes);
    // Open and appended rounds keep their claims against everyone, the proposer too.
    assert!(reserved_for_other(Phase::Commit, &proposer, 0, 10, &proposer, 1_000_000));
    assert!(reserved_for_other(Phase::Appended, &proposer, 0, 10, &proposer, 1_000_000));
    // Ended without a block: free for the proposer at once, for others after the reserve.
    assert!(!reserved_for_other(rejected, &proposer, 50, 10, &proposer, 51));
    assert!(reserved_for_other(rejected, &proposer, 50, 10, &other, 50 + 10 + CLAIM_RESERVE));
    assert!(!reserved_for_other(rejected, &proposer, 50, 10, &other, 51 + 10 + CLAIM_RESERVE));
    assert!(reserved_for_other(rejected, &proposer, u32::MAX, u32::MAX, &other, u32::MAX));
}

#[test]
fn the_lambda_rule_tolerates_at_most_one_minus_lambda_of_loss() {
    // Accuracy 0.80 → 0.78 with lambda 0.95: kept (loss 0.02 <= 0.04); 0.70: degraded.
    assert!(keeps_performance(780_000, 800_000, 950_000, true, 0));
    assert!(!keeps_performance(700_000, 800_000, 950_000, true, 0));
    assert!(keeps_performance(760_000, 800_000, 950_000, true, 0), "the boundary is kept");
    // MSE 100 → 105 with lambda 0.95: 5% more error kept; 106: degraded.
    assert!(keeps_performance(105, 100, 950_000, false, 0));
    assert!(!keeps_performance(106, 100, 950_000, false, 0));
    // R² of -0.50 may lose 5% of 0.50 too: -0.525 kept, -0.53 not; the old rule
    // (new >= lambda·previous) demanded -0.475, a gain.
    assert!(keeps_performance(-525_000, -500_000, 950_000, true, 0));
    assert!(!keeps_performance(-530_000, -500_000, 950_000, true, 0));
    assert!(keeps_performance(-490_000, -500_000, 950_000, true, 0));
    // A zero error baseline: losses within the tolerance are no loss.
    assert!(keeps_performance(10, 0, 950_000, false, 10));
    assert!(!keeps_performance(11, 0, 950_000, false, 10));
    assert!(!keeps_performance(1, 0, 950_000, false, 0));
    // lambda 0 tolerates losing everything, and no more: an accuracy of 0, an error doubled.
    assert!(keeps_performance(0, 800_000, 0, true, 0));
    assert!(keeps_performance(200, 100, 0, false, 0) && !keeps_performance(201, 100, 0, false, 0));
    // Improvements are always kept.
    assert!(keeps_performance(i64::MAX, i64::MIN, LAMBDA_ONE, true, 0));
    assert!(keeps_performance(i64::MIN, i64::MAX, LAMBDA_ONE, false, 0));
}

#[test]
fn metric_ranges() {
    assert!(MetricKind::Accuracy.admits(0) && MetricKind::Accuracy.admits(METRIC_ONE));
    assert!(!MetricKind::Accuracy.admits(-1) && !MetricKind::Accuracy.admits(METRIC_ONE + 1));
    assert!(MetricKind::Mse.admits(i64::MAX) && !MetricKind::Mse.admits(-1));
    assert!(MetricKind::R2.admits(i64::MIN) && !MetricKind::R2.admits(METRIC_ONE + 1));
}

fn spec(metric: MetricKind, tolerance: u32) -> EvaluationSpec {
    EvaluationSpec {
        architecture_hash: H256::zero(),
        test_set_hash: H256::zero(),
        test_set_size: 100,
        metric,
        higher_is_better: metric.higher_is_better(),
        metric_tolerance: tolerance,
    }
}

fn scored(g: i64, digest: u8, l_keeps: bool, l_size: u32) -> Reveal {
    Reveal {
        report: Report {
            round: 0,
            candidate: H256::zero(),
            verdict: Verdict::Scored(Scores { g_metric: g, g_digest: H256::repeat_byte(digest), l_keeps, l_size }),
        },
        registered_l_size: l_size,
    }
}

fn refused() -> Reveal {
    Reveal {
        report: Report { round: 0, candidate: H256::zero(), verdict: Verdict::Refused(Refusal::ModelRefused) },
        registered_l_size: 0,
    }
}

fn rules(metric: MetricKind, previous: i64, k: u32) -> TallyRules {
    TallyRules { spec: spec(metric, 0), previous, lambda_ppm: 950_000, quorum: Fraction::TWO_THIRDS, validators: k }
}

#[test]
fn one_liar_cannot_decide_the_lambda_rule() {
    // Two honest validators find 0.85 on G and vote for it from their L of 50; the third reveals
    // the right digest and claims a huge L.
    let honest = scored(850_000, 7, true, 50);
    let mut huge_l = scored(850_000, 7, false, u32::MAX);
    huge_l.registered_l_size = 50;
    let tally = tally(&rules(MetricKind::Accuracy, 800_000, 3), &[honest, honest, huge_l]);
    assert_eq!(tally.rejection, None, "accepted as the honest validators find");
    assert_eq!(tally.performance, Some(850_000));
    assert_eq!(tally.findings[2].deviation, Some(Deviation::LocalSetMismatch), "{tally:?}");
    // An absurd G metric.
    let absurd = scored(1_000_000_000_000_000, 7, true, 50);
    let tally = crate::rules::tally(&rules(MetricKind::Accuracy, 800_000, 3), &[honest, absurd, honest]);
    assert_eq!((tally.rejection, tally.performance), (None, Some(850_000)));
    assert_eq!(tally.findings[1].deviation, Some(Deviation::OutOfRange));
    // A forged G metric with the right digest.
    let forged = scored(100_000, 7, true, 50);
    let tally = crate::rules::tally(&rules(MetricKind::Accuracy, 800_000, 3), &[honest, honest, forged]);
    assert_eq!(tally.findings[2].deviation, Some(Deviation::GMetric));
    assert_eq!((tally.rejection, tally.performance, tally.accepts, tally.counted), (None, Some(850_000), 2, 2));
}

/// The capture measured on the dev node before this rule: two of three validators reported the
/// true G digest and metric (0.85) and L = 1.0 on a registered L of 10^7, and the block recorded
/// 0.999998. Now L is a vote: the block records G's 0.85, and the next honest candidate keeps it.
#[test]
fn two_colluders_with_huge_local_sets_cannot_move_the_recorded_performance() {
    let mut r = rules(MetricKind::Accuracy, 800_000, 3);
    let honest = scored(850_000, 7, true, 50);
    let colluder = scored(850_000, 7, true, crate::MAX_LOCAL_SET);
    let t = tally(&r, &[honest, colluder, colluder]);
    assert_eq!((t.rejection, t.performance), (None, Some(850_000)));
    // The next honest candidate, 0.84, keeps lambda of the recorded 0.85.
    r.previous = lineage_best(800_000, t.performance.unwrap(), true);
    let next = tally(&r, &[scored(840_000, 8, true, 50), scored(840_000, 8, true, 50), scored(840_000, 8, true, 0)]);
    assert_eq!(next.rejection, None);
    // Voting against with their L is all they can do: two of three reject a good candidate.
    let veto = tally(&r, &[scored(860_000, 9, true, 50), scored(860_000, 9, false, 10), scored(860_000, 9, false, 10)]);
    assert_eq!((veto.rejection, veto.performance), (Some(Rejection::NotEnoughVotes), Some(860_000)));
}

/// Losses do not compound: the lambda rule compares with the lineage's best. At lambda 0.95,
/// ten candidates each 4.9% worse than the one before: the first keeps the best (0.82), every
/// later one is refused. With the tip as reference (the old rule) all ten pass.
#[test]
fn losses_compound_no_more() {
    let mut best = 820_000i64;
    let mut tip = 820_000i64;
    let mut candidate = 820_000i64;
    let (mut accepted, mut accepted_against_tip) = (Vec::new(), 0);
    for step in 0..10 {
        candidate = candidate * 951 / 1000;
        let t = tally(&rules(MetricKind::Accuracy, best, 3), &[scored(candidate, 7, true, 0); 3]);
        if t.rejection.is_none() {
            best = lineage_best(best, candidate, true);
            accepted.push(step);
        }
        if keeps_performance(candidate, tip, 950_000, true, 0) {
            accepted_against_tip += 1;
            tip = candidate;
        }
    }
    assert_eq!(accepted, vec![0], "refused from the second on");
    assert_eq!(accepted_against_tip, 10, "the old rule takes them all");
}

#[test]
fn digests_refusals_and_votes() {
    let r = rules(MetricKind::Accuracy, 800_000, 3);
    // Three digests: no majority, nobody judged.
    let t = tally(&r, &[scored(820_000, 1, true, 0), scored(820_000, 2, true, 0), scored(820_000, 3, true, 0)]);
    assert_eq!((t.rejection, t.performance), (Some(Rejection::InconsistentPredictions), None));
    assert!(!t.judged() && t.findings.iter().all(|f| f.deviation.is_none()));
    // Two agree, one deviates: recorded, not counted; 2 of 3 still accept.
    let t = tally(&r, &[scored(820_000, 7, true, 0), scored(820_000, 7, true, 0), scored(820_000, 9, true, 0)]);
    assert_eq!((t.rejection, t.accepts, t.findings[2].deviation), (None, 2, Some(Deviation::Digest)));
    // Refusals by 2/3 of the reveals reject the candidate as refused; nobody is judged.
    let t = tally(&r, &[refused(), refused(), scored(820_000, 7, true, 0)]);
    assert_eq!((t.rejection, t.judged()), (Some(Rejection::Refused), false));
    // A refusal of a candidate two of three scored with one digest is a deviation.
    let t = tally(&r, &[scored(820_000, 7, true, 0), refused(), scored(820_000, 7, true, 0)]);
    assert_eq!((t.rejection, t.findings[1].deviation), (None, Some(Deviation::Refused)));
    // One accepting vote of k = 3 is too few, though G keeps: not enough votes.
    let t = tally(&r, &[scored(820_000, 7, true, 0)]);
    assert_eq!((t.rejection, t.accepts), (Some(Rejection::NotEnoughVotes), 1));
    // Below lambda: degrades, whatever the local votes.
    let t = tally(&r, &[scored(700_000, 7, true, 5); 3]);
    assert_eq!((t.rejection, t.performance, t.accepts), (Some(Rejection::Degrades), Some(700_000), 0));
}

/// At `f = k/3` the guarantee needs every honest validator to reveal: with one silent, the
/// liar's other digest leaves no majority (the round is rejected, nothing is recorded).
#[test]
fn at_a_third_of_liars_one_silent_honest_validator_lets_them_block() {
    let r = rules(MetricKind::Accuracy, 800_000, 3);
    let t = tally(&r, &[scored(850_000, 7, true, 0), scored(850_000, 7, true, 0), scored(100_000, 9, false, 0)]);
    assert_eq!(t.rejection, None, "every honest validator revealed: the liar decides nothing");
    let t = tally(&r, &[scored(850_000, 7, true, 0), scored(100_000, 9, false, 0)]);
    assert_eq!(t.rejection, Some(Rejection::InconsistentPredictions));
}

/// How the liars lie, chosen after seeing the honest reports, all together.
#[derive(Debug, Clone, Copy)]
enum Lie {
    /// The honest digest, G at an end of the metric's range, the largest local set.
    Extreme { high: bool, l_keeps: bool },
    /// The honest digest, G just inside or just outside the tolerance of the honest G.
    Boundary { offset: i64, up: bool, l_keeps: bool },
    /// A digest of their own, shared by all of them, with G at an end of the range.
    OwnDigest { high: bool },
    /// A refusal.
    Refuse,
    /// A metric out of the range, or a local set other than the registered one.
    Malformed { out_of_range: bool },
    /// Silence.
    Silent,
}

fn lie() -> impl Strategy<Value = Lie> {
    prop_oneof![
        (any::<bool>(), any::<bool>()).prop_map(|(high, l_keeps)| Lie::Extreme { high, l_keeps }),
        (-2i64..=2, any::<bool>(), any::<bool>()).prop_map(|(offset, up, l_keeps)| Lie::Boundary {
            offset,
            up,
            l_keeps
        }),
        any::<bool>().prop_map(|high| Lie::OwnDigest { high }),
        Just(Lie::Refuse),
        any::<bool>().prop_map(|out_of_range| Lie::Malformed { out_of_range }),
        Just(Lie::Silent),
    ]
}

fn in_range(metric: MetricKind) -> impl Strategy<Value = i64> {
    match metric {
        MetricKind::Mse => 0i64..=1_000_000_000,
        MetricKind::R2 => -1_000_000_000i64..=METRIC_ONE,
        _ => 0i64..=METRIC_ONE,
    }
}

#[derive(Debug, Clone)]
struct Panel {
    metric: MetricKind,
    k: usize,
    g: i64,
    previous: i64,
    lambda_ppm: u32,
    tolerance: u32,
    /// Each honest validator: its G metric's offset within the tolerance, its local vote and
    /// its local set's size.
    honest: Vec<(u32, bool, u32)>,
    /// Each liar's lie (one for all when they collude).
    lies: Vec<Lie>,
    collude: bool,
    order: Vec<usize>,
}

/// `k` in 1..=16 and every liar count up to and including `k/3`, weighted to the bound.
fn panel() -> impl Strategy<Value = Panel> {
    (prop_oneof![Just(MetricKind::Accuracy), Just(MetricKind::Mse), Just(MetricKind::R2)], 1usize..=16)
        .prop_flat_map(|(metric, k)| {
            let bound = k / 3;
            (Just(metric), Just(k), prop_oneof![2 => Just(bound), 1 => 0..=bound])
        })
        .prop_flat_map(|(metric, k, liars)| {
            let honest = k - liars;
            (
                Just(metric),
                Just(k),
                in_range(metric),
                in_range(metric),
                prop_oneof![Just(950_000u32), 0u32..=LAMBDA_ONE],
                prop_oneof![Just(0u32), 0u32..=1_000],
                proptest::collection::vec(
                    (
                        any::<u32>(),
                        prop_oneof![3 => Just(true), 1 => Just(false)],
                        prop_oneof![Just(0u32), 1u32..=5_000],
                    ),
                    honest,
                ),
                proptest::collection::vec(lie(), liars),
                any::<bool>(),
                Just((0..k).collect::<Vec<usize>>()).prop_shuffle(),
            )
        })
        .prop_map(|(metric, k, g, previous, lambda_ppm, tolerance, honest, lies, collude, order)| Panel {
            metric,
            k,
            g,
            previous,
            lambda_ppm,
            tolerance,
            honest,
            lies,
            collude,
            order,
        })
}

/// A liar's report, made after seeing the honest ones (`honest_g`: their G metrics).
fn lie_report(lie: Lie, metric: MetricKind, honest_g: &[i64], tolerance: u32) -> Option<Reveal> {
    let (low, high) = metric.range();
    let reference = honest_g.first().copied().unwrap_or_default();
    Some(match lie {
        Lie::Extreme { high: up, l_keeps } => scored(if up { high } else { low }, 7, l_keeps, crate::MAX_LOCAL_SET),
        Lie::Boundary { offset, up, l_keeps } => {
            let distance = i64::from(tolerance).saturating_add(offset).max(0);
            let g = if up { reference.saturating_add(distance) } else { reference.saturating_sub(distance) };
            scored(g.clamp(low, high), 7, l_keeps, 7)
        }
        Lie::OwnDigest { high: up } => scored(if up { high } else { low }, 9, true, 0),
        Lie::Refuse => refused(),
        Lie::Malformed { out_of_range: true } => {
            scored(if high == i64::MAX { low.saturating_sub(1) } else { high + 1 }, 7, true, 0)
        }
        Lie::Malformed { out_of_range: false } => {
            let mut reveal = scored(reference, 7, true, 100);
            reveal.registered_l_size = 50;
            reveal
        }
        Lie::Silent => return None,
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 4000, ..ProptestConfig::default() })]

    /// Up to and including `k/3` liars that choose their reports after the honest ones, at the
    /// extremes and colluding, with every honest validator revealing: the recorded performance
    /// is within the honest G metrics; a candidate whose honest G keeps the rule and that every
    /// honest validator votes for is accepted; one whose honest G does not is rejected; every
    /// lie is recorded as a deviation, never an honest report.
    #[test]
    fn liars_up_to_a_third_decide_nothing(p in panel()) {
        let spec = spec(p.metric, p.tolerance);
        let honest_g: Vec<i64> = p.honest.iter()
            .map(|(offset, _, _)| p.g.saturating_add(i64::from(offset % (p.tolerance + 1))).min(p.metric.range().1))
            .collect();
        let keeps = |v: i64| keeps_performance(v, p.previous, p.lambda_ppm, spec.higher_is_better, p.tolerance);
        let mut slots: Vec<Option<(Reveal, bool)>> = p.honest.iter().zip(&honest_g)
            .map(|((_, vote, l_size), g)| Some((scored(*g, 7, *vote, *l_size), true)))
            .collect();
        let first = p.lies.first().copied();
        for lie in &p.lies {
            let lie = if p.collude { first.unwrap_or(*lie) } else { *lie };
            slots.push(lie_report(lie, p.metric, &honest_g, p.tolerance).map(|r| (r, false)));
        }
        let ordered: Vec<(Reveal, bool)> = p.order.iter().filter_map(|i| slots[*i]).collect();
        let reveals: Vec<Reveal> = ordered.iter().map(|(r, _)| *r).collect();
        let rules = TallyRules { spec, previous: p.previous, lambda_ppm: p.lambda_ppm, quorum: Fraction::TWO_THIRDS, validators: p.k as u32 };
        let tally = tally(&rules, &reveals);

        let low = *honest_g.iter().min().unwrap();
        let high = *honest_g.iter().max().unwrap();
        let performance = tally.performance.expect("the honest digest always has a majority");
        prop_assert!((low..=high).contains(&performance), "{performance} outside [{low}, {high}]: {tally:?}");
        let every_honest_vote = p.honest.iter().all(|(_, vote, l_size)| *vote || *l_size == 0);
        if honest_g.iter().all(|g| keeps(*g)) && every_honest_vote {
            prop_assert_eq!(tally.rejection, None);
        }
        if honest_g.iter().all(|g| !keeps(*g)) {
            prop_assert_eq!(tally.rejection, Some(Rejection::Degrades));
        }
        for ((reveal, honest), finding) in ordered.iter().zip(&tally.findings) {
            if *honest {
                prop_assert_eq!(finding.deviation, None);
                continue;
            }
            let expected = match reveal.report.verdict {
                Verdict::Refused(_) => Some(Deviation::Refused),
                Verdict::Scored(scores) if !p.metric.admits(scores.g_metric) => Some(Deviation::OutOfRange),
                Verdict::Scored(scores) if scores.l_size != reveal.registered_l_size => Some(Deviation::LocalSetMismatch),
                Verdict::Scored(scores) if scores.g_digest != H256::repeat_byte(7) => Some(Deviation::Digest),
                Verdict::Scored(scores) if scores.g_metric.abs_diff(performance) > u64::from(p.tolerance) => Some(Deviation::GMetric),
                Verdict::Scored(_) => None,
            };
            prop_assert_eq!(finding.deviation, expected);
            // A counted lie votes with the recorded G: it cannot accept what G refuses.
            if finding.accepting {
                prop_assert!(keeps(performance));
            }
        }
    }

    /// The lambda rule is monotone: a better finding never loses what a worse one keeps.
    #[test]
    fn the_lambda_rule_is_monotone(a in any::<i64>(), b in any::<i64>(), previous in any::<i64>(), lambda in 0u32..=LAMBDA_ONE, tolerance in any::<u32>(), higher in any::<bool>()) {
        let (worse, better) = if (a <= b) == higher { (a, b) } else { (b, a) };
        if keeps_performance(worse, previous, lambda, higher, tolerance) {
            prop_assert!(keeps_performance(better, previous, lambda, higher, tolerance));
        }
        prop_assert!(keeps_performance(previous, previous, lambda, higher, tolerance), "no change is no loss");
    }
}

#[test]
fn window_randomness_depends_on_every_output_and_their_order() {
    let outputs = [[1u8; 32], [2; 32], [3; 32]];
    let randomness = window_randomness::<TestKeccak>(&outputs);
    for block in 0..outputs.len() {
        let mut changed = outputs;
        if let Some(output) = changed.get_mut(block) {
            output[31] ^= 1;
        }
        assert_ne!(window_randomness::<TestKeccak>(&changed), randomness, "block {block} is ignored");
    }
    assert_ne!(window_randomness::<TestKeccak>(&[[3u8; 32], [2; 32], [1; 32]]), randomness);
    let mut joined = Vec::new();
    outputs.iter().for_each(|o| joined.extend_from_slice(o));
    assert_eq!(randomness, sp_crypto_hashing::keccak_256(&joined));
}

#[test]
fn the_randomness_precompile_is_named_as_pallet_revive_and_solidity_name_it() {
    // pallet-revive: a fixed precompile id `p` lives at `0x00…00 pppp 0000`.
    assert_eq!(&crate::RANDOMNESS_PRECOMPILE[..16], &[0u8; 16]);
    assert_eq!(&crate::RANDOMNESS_PRECOMPILE[18..], &[0u8; 2]);
    assert_ne!(&crate::RANDOMNESS_PRECOMPILE[16..18], &[0u8; 2]);
    let selector = sp_crypto_hashing::keccak_256(b"blockRandomness(uint32)");
    assert_eq!(crate::RANDOMNESS_SELECTOR, selector[..4], "{:02x?}", &selector[..4]);
}

#[test]
fn the_precompile_answer_is_read_strictly() {
    let mut answer = [0u8; 64];
    answer[31] = 1;
    answer[32..].copy_from_slice(&[7u8; 32]);
    assert_eq!(block_randomness_answer(&answer), Ok(Some([7u8; 32])));
    answer[31] = 0;
    assert_eq!(block_randomness_answer(&answer), Ok(None));
    // Not a bool, short, long, empty (an account without code answers nothing).
    answer[31] = 2;
    assert_eq!(block_randomness_answer(&answer), Err(Error::RandomnessUnavailable));
    answer[31] = 1;
    answer[0] = 1;
    assert_eq!(block_randomness_answer(&answer), Err(Error::RandomnessUnavailable));
    assert_eq!(block_randomness_answer(&answer[1..]), Err(Error::RandomnessUnavailable));
    assert_eq!(block_randomness_answer(&[0u8; 96]), Err(Error::RandomnessUnavailable));
    assert_eq!(block_randomness_answer(&[]), Err(Error::RandomnessUnavailable));
    let call = block_randomness_call(0x0102_0304);
    assert_eq!(call[..4], crate::RANDOMNESS_SELECTOR);
    assert_eq!(call[4..32], [0u8; 28]);
    assert_eq!(call[32..], [1, 2, 3, 4]);
}
