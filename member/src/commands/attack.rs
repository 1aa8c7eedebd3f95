//! How a malicious member spoils its increment (`tclearn train --attack`), for the demo and the
//! tests of the coalition. Built only with the `attack` feature: a hospital's `tclearn` has no
//! such option.

use super::*;
use rand::SeedableRng;

/// How a malicious member spoils its increment, for demonstrations and tests of the coalition.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Attack {
    /// Train on wrong labels.
    FlipLabels,
    /// Scale the increment (trained minus parent weights) by a factor: a boosted or reversed
    /// update.
    Scale(f32),
    /// Add Gaussian noise of this deviation to the trained weights.
    Noise(f32),
    /// Train honestly, but declare a tenth of the privacy the training spent.
    UnderDeclare,
}

impl FromStr for Attack {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        let number = |v: &str| v.parse::<f32>().map_err(|_| format!("{v:?} is not a number"));
        match text.split_once(':') {
            None if text == "flip-labels" => Ok(Self::FlipLabels),
            None if text == "under-declare" => Ok(Self::UnderDeclare),
            Some(("scale", v)) => number(v).map(Self::Scale),
            Some(("noise", v)) => number(v).map(Self::Noise),
            _ => Err("flip-labels, scale:FACTOR, noise:DEVIATION or under-declare".into()),
        }
    }
}

/// The rows to train on, with wrong labels for a flip-labels attack.
pub(super) fn spoil_rows(attack: Option<Attack>, model: &Model, mut rows: Table) -> Table {
    if attack == Some(Attack::FlipLabels) {
        let classes = model.classes() as u32;
        rows.labels.iter_mut().for_each(|l| *l = (*l + 1) % classes);
    }
    rows
}

/// The trained `model` spoiled as a scale or noise attack does, from its `parent` (the noise
/// drawn from `seed`).
pub(super) fn spoil_model(attack: Option<Attack>, parent: &Model, model: &mut Model, seed: u64) -> Result<()> {
    match attack {
        Some(Attack::Scale(factor)) => {
            let trained = model.trained();
            let scaled: Vec<f32> = parent.trained().iter().zip(&trained).map(|(p, t)| p + factor * (t - p)).collect();
            model.set_trained(&scaled);
        }
        Some(Attack::Noise(deviation)) => {
            let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(seed);
            let normal = rand_distr::Normal::new(0.0f32, deviation).map_err(|e| anyhow!("noise:{deviation}: {e}"))?;
            let noised: Vec<f32> =
                model.trained().iter().map(|v| v + rand_distr::Distribution::sample(&normal, &mut rng)).collect();
            model.set_trained(&noised);
        }
        _ => {}
    }
    Ok(())
}

/// The DP declaration as an under-declare attack writes it: a tenth of the RDP at every order.
pub(super) fn spoil_declaration(attack: Option<Attack>, declaration: Option<DpDeclaration>) -> Option<DpDeclaration> {
    match (attack, declaration) {
        (Some(Attack::UnderDeclare), Some(mut declaration)) => {
            declaration.rdp.iter_mut().filter(|r| **r != rdp::INFINITE).for_each(|r| *r /= 10);
            Some(declaration)
        }
        (_, declaration) => declaration,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attacks_read_as_the_demo_writes_them() {
        assert_eq!("flip-labels".parse(), Ok(Attack::FlipLabels));
        assert_eq!("scale:-10".parse(), Ok(Attack::Scale(-10.0)));
        assert_eq!("noise:3".parse(), Ok(Attack::Noise(3.0)));
        assert_eq!("under-declare".parse(), Ok(Attack::UnderDeclare));
        for bad in ["flip", "scale", "scale:x", "noise:", "boost:2"] {
            assert!(bad.parse::<Attack>().is_err(), "{bad}");
        }
    }
}
