//! A share of requests, as Envoy's `FractionalPercent` and Istio's
//! `Percent`: kept in parts per million so that a draw is one comparison.

use std::fmt;

use super::RouteError;

/// A percentage between 0 and 100, to a millionth.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Percent(u32);

impl Percent {
    /// Parts per million in 100 %.
    pub const MILLION: u32 = 1_000_000;
    /// Every request.
    pub const ALL: Percent = Percent(Self::MILLION);
    /// No request.
    pub const NONE: Percent = Percent(0);

    /// `value` percent (Istio's `percentage.value`); an error outside
    /// `0..=100` or when not a number.
    pub fn new(value: f64) -> Result<Self, RouteError> {
        if !(0.0..=100.0).contains(&value) {
            return Err(RouteError::InvalidPercent(value));
        }
        Ok(Percent((value * 10_000.0).round() as u32))
    }

    /// `n` parts per million, capped at 100 %.
    pub fn from_ppm(n: u32) -> Self {
        Percent(n.min(Self::MILLION))
    }

    /// `numerator / denominator` (Envoy's `FractionalPercent` with a
    /// denominator of 100, 10,000 or 1,000,000), capped at 100 %.
    pub fn from_fraction(numerator: u32, denominator: u32) -> Self {
        let ppm = u64::from(numerator) * u64::from(Self::MILLION) / u64::from(denominator.max(1));
        Percent(ppm.min(u64::from(Self::MILLION)) as u32)
    }

    /// Parts per million.
    pub fn ppm(self) -> u32 {
        self.0
    }

    /// Whether a request whose draw is `draw` (uniform over `u32`) falls in
    /// the share.
    pub fn hit(self, draw: u32) -> bool {
        if self.0 >= Self::MILLION {
            return true;
        }
        draw % Self::MILLION < self.0
    }
}

impl fmt::Display for Percent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}%", f64::from(self.0) / 10_000.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_draws() {
        let half = Percent::new(50.0).unwrap();
        assert_eq!(half.ppm(), 500_000);
        assert_eq!(half.to_string(), "50%");
        assert_eq!(Percent::from_fraction(5, 100), Percent::new(5.0).unwrap());
        let hits = (0..1_000_000u32).filter(|d| half.hit(*d)).count();
        assert_eq!(hits, 500_000);
        assert!(Percent::ALL.hit(u32::MAX));
        assert!(!Percent::NONE.hit(0));
        assert!(Percent::new(100.5).is_err());
        assert!(Percent::new(f64::NAN).is_err());
    }
}
