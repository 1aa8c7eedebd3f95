//! The privacy ledger's arithmetic: Rényi differential privacy (RDP) in fixed point, as the chain
//! keeps it.
//!
//! A proposal declares the RDP of its training at each of [`RDP_ORDERS`] orders (a
//! [`crate::DpDeclaration`]); the validators recompute it from the declared noise and the round's
//! own samples, batch size and epochs before they fetch the candidate, and refuse it if any order
//! is under-declared (`Refusal::PrivacyUnderDeclared`). The chain adds each member's declarations
//! order by order ([`compose`]: RDP composes by addition) and converts the totals to `(epsilon,
//! delta)` at the budget's delta ([`epsilon`]), with Proposition 12 of Canonne, Kamath and Steinke
//! (2020), the conversion Google's `dp-accounting` and Opacus use:
//!
//! `epsilon = min over alpha of  rdp(alpha) + ln(1 / delta) / (alpha - 1) + ln(1 - 1/alpha) -
//! ln(alpha) / (alpha - 1)`.
//!
//! Everything here is integer arithmetic that rounds against the member: a declared RDP is
//! rounded up ([`from_real`]), `ln(1 / delta)` and the per-order constants are bounded from above,
//! and epsilon is rounded up, so the chain's epsilon is never below the real one of what was
//! declared. The orders are fewer than the accountant's (32 against `dp-accounting`'s 165), which
//! can only give a larger epsilon: the minimum is over fewer orders.

use crate::PrivacySpend;

/// Orders the chain keeps (a [`Rdp`] holds one total per order).
pub const RDP_ORDERS: usize = 32;

/// The orders, in hundredths: 1.25 to 256, as dense as `dp-accounting`'s default where DP-SGD's
/// optimum usually falls (2 to 64), in steps that keep the chain's epsilon at most 12.5 % above
/// the accountant's in `tclearn-privacy`'s sweep (its tests allow 15 %).
pub const RDP_ORDERS_CENTI: [u32; RDP_ORDERS] = [
    125, 140, 150, 175, 200, 225, 250, 275, 300, 350, 400, 450, 500, 600, 700, 800, 900, 1000, 1200, 1400, 1600, 2000,
    2400, 2800, 3200, 4000, 4800, 5600, 6400, 9600, 12800, 25600,
];

/// 1 nat of RDP, in the fixed point of a [`Rdp`].
pub const RDP_ONE: u64 = 1_000_000_000;

/// The RDP of a mechanism without noise (or past what a `u64` holds): no privacy at that order.
pub const INFINITE: u64 = u64::MAX;

/// The delta at which a coalition without a privacy budget reports its members' epsilon: 1e-5,
/// in units of `1 / PrivacySpend::DELTA_ONE`.
pub const REPORT_DELTA: u64 = PrivacySpend::DELTA_ONE / 100_000;

/// The largest delta a budget may have (1e-3, in units of `1 / PrivacySpend::DELTA_ONE`): a delta
/// is the chance that the guarantee fails outright. The usual advice is a delta below one over
/// the rows of a data set (1e-5 for a hospital's 10^5); the chain refuses only what no data set
/// of a thousand rows or more could justify, and governance chooses within it.
pub const MAX_BUDGET_DELTA: u64 = PrivacySpend::DELTA_ONE / 1_000;

/// RDP at each of [`RDP_ORDERS_CENTI`], in units of `1 / RDP_ONE` nats.
pub type Rdp = [u64; RDP_ORDERS];

/// `ln(1 - 1/alpha) - ln(alpha) / (alpha - 1)` at each order, in units of `1 / RDP_ONE`, rounded
/// up (computed to 50 digits; `tests::the_order_constants_bound_the_real_ones` recomputes them).
pub const ORDER_TERMS: [i64; RDP_ORDERS] = [
    -2_502_012_117,
    -2_093_943_560,
    -1_909_542_504,
    -1_593_452_244,
    -1_386_294_361,
    -1_236_530_837,
    -1_121_686_111,
    -1_030_042_787,
    -954_771_252,
    -837_577_424,
    -749_780_192,
    -681_050_827,
    -625_503_029,
    -540_673_450,
    -478_469_038,
    -430_594_470,
    -392_436_107,
    -361_203_303,
    -312_911_981,
    -277_112_382,
    -249_377_769,
    -208_963_414,
    -180_735_867,
    -159_782_626,
    -143_546_630,
    -119_904_460,
    -103_419_388,
    -91_206_718,
    -81_762_374,
    -58_517_070,
    -46_048_140,
    -25_659_693,
];

/// `ln(PrivacySpend::DELTA_ONE) = ln(10^15)`, in units of `1 / RDP_ONE`, rounded up.
const LN_DELTA_ONE_UP: u64 = 34_538_776_395;
/// `ln 2`, in units of 10^-18, rounded down.
const LN_2_DOWN: u128 = 693_147_180_559_945_309;
/// 10^-18 in units of `1 / RDP_ONE`.
const LN_2_PER_UNIT: u128 = 1_000_000_000;
/// Fractional bits of [`log2_down`]'s answer.
const LOG2_BITS: u32 = 32;

/// Two members' or two proposals' RDP together: order by order, saturating at [`INFINITE`].
pub fn compose(a: &Rdp, b: &Rdp) -> Rdp {
    let mut total = *a;
    for (t, v) in total.iter_mut().zip(b) {
        *t = t.saturating_add(*v);
    }
    total
}

/// A real RDP in fixed point, rounded up: `None` for a negative or NaN value; infinity and values
/// past a `u64` are [`INFINITE`].
pub fn from_real(rdp: f64) -> Option<u64> {
    if rdp.is_nan() || rdp < 0.0 {
        return None;
    }
    let scaled = rdp * RDP_ONE as f64;
    // 2^64 as f64.
    if scaled >= 18_446_744_073_709_551_616.0 {
        return Some(INFINITE);
    }
    let truncated = scaled as u64;
    Some(if (truncated as f64) < scaled { truncated.saturating_add(1) } else { truncated })
}

/// `log2(x)` for `x >= 1`, with [`LOG2_BITS`] fractional bits, never above the real value (each
/// squaring truncates, which can only lower the bits that follow).
fn log2_down(x: u64) -> u64 {
    let whole = 63u32.saturating_sub(x.leading_zeros());
    // x / 2^whole in [1, 2), with 62 fractional bits: its square stays below 2^128.
    let one: u128 = 1 << 62;
    let mut y = (u128::from(x) << 62) >> whole;
    let mut bits = u64::from(whole) << LOG2_BITS;
    for bit in (0..LOG2_BITS).rev() {
        y = y.saturating_mul(y) >> 62;
        if y >= 2 * one {
            y >>= 1;
            bits |= 1 << bit;
        }
    }
    bits
}

/// `ln(x)` for `x >= 1`, in units of `1 / RDP_ONE`, never above the real value; 0 for `x = 0`.
pub fn ln_down(x: u64) -> u64 {
    if x == 0 {
        return 0;
    }
    // At most 64 · 2^32 · 0.7 · 10^18 < 2^128.
    let product = u128::from(log2_down(x)).saturating_mul(LN_2_DOWN);
    u64::try_from((product >> LOG2_BITS) / LN_2_PER_UNIT).unwrap_or(u64::MAX)
}

/// The conversion's constant at each order for `delta` (units of `1 / PrivacySpend::DELTA_ONE`):
/// `ln(1/delta) / (alpha - 1) + ORDER_TERMS`, bounded from above and at least 0. `None` for a
/// delta outside `(0, 1)`.
pub fn conversion(delta: u64) -> Option<Rdp> {
    if delta == 0 || delta >= PrivacySpend::DELTA_ONE {
        return None;
    }
    let ln_inverse = LN_DELTA_ONE_UP.saturating_sub(ln_down(delta));
    let mut constants = [0u64; RDP_ORDERS];
    for ((constant, centi), term) in constants.iter_mut().zip(RDP_ORDERS_CENTI).zip(ORDER_TERMS) {
        let above_one = u128::from(centi.saturating_sub(100).max(1));
        let share = u128::from(ln_inverse).saturating_mul(100).div_ceil(above_one);
        let value = i128::try_from(share).unwrap_or(i128::MAX).saturating_add(i128::from(term));
        *constant = u64::try_from(value.max(0)).unwrap_or(INFINITE);
    }
    Some(constants)
}

/// The epsilon of the RDP `totals` at `delta`, in units of `1 / PrivacySpend::EPSILON_ONE`,
/// rounded up: the least over the orders of `total + conversion`. `Some(0)` when nothing was
/// spent at any order; `None` when every order is infinite, or for a delta outside `(0, 1)`.
pub fn epsilon(totals: &Rdp, delta: u64) -> Option<u64> {
    let constants = conversion(delta)?;
    if totals.iter().all(|&t| t == 0) {
        return Some(0);
    }
    let least = totals
        .iter()
        .zip(constants)
        .filter(|(&total, _)| total != INFINITE)
        .filter_map(|(&total, constant)| total.checked_add(constant))
        .min()?;
    Some(least.div_ceil(RDP_ONE / PrivacySpend::EPSILON_ONE))
}
