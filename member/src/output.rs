//! How `tclearn` shows things to a person: tables, numbers in the coalition's units, progress.

use comfy_table::{presets::UTF8_BORDERS_ONLY, Table};
use indicatif::{ProgressBar, ProgressStyle};
use std::time::Duration;
use tclearn_client::coalition::{rules::STRENGTH_ONE, METRIC_ONE};

/// A table with `header`, printed by `println!("{table}")`.
pub fn table(header: &[&str]) -> Table {
    let mut table = Table::new();
    table.load_preset(UTF8_BORDERS_ONLY).set_header(header.iter().copied());
    table
}

/// A metric in the contract's fixed point, as a number.
pub fn metric(fixed: i64) -> f64 {
    fixed as f64 / METRIC_ONE as f64
}

/// A strength in the contract's fixed point, as a number (strengths sum to 2).
pub fn strength(fixed: u64) -> f64 {
    fixed as f64 / STRENGTH_ONE as f64
}

/// `ADDRESS=NAME`.
pub fn parse_name(text: &str) -> Result<(String, String), String> {
    let (address, name) = text.split_once('=').ok_or("expected ADDRESS=NAME")?;
    Ok((address.trim().to_lowercase(), name.trim().to_string()))
}

/// `0x1234…abcd`.
pub fn short(text: &str) -> String {
    if text.len() <= 14 {
        return text.to_string();
    }
    format!("{}…{}", &text[..6], &text[text.len() - 4..])
}

/// A bar of `total` steps, hidden when the output is JSON or not a terminal.
pub fn bar(total: u64, what: &str, hidden: bool) -> ProgressBar {
    let bar = if hidden { ProgressBar::hidden() } else { ProgressBar::new(total) };
    bar.set_style(
        ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} ({per_sec}, {eta} left)")
            .expect("a valid template")
            .progress_chars("=> "),
    );
    bar.set_message(what.to_string());
    bar
}

/// A spinner saying `what`, hidden when the output is JSON.
pub fn spinner(what: &str, hidden: bool) -> ProgressBar {
    let spinner = if hidden { ProgressBar::hidden() } else { ProgressBar::new_spinner() };
    spinner.set_style(ProgressStyle::with_template("{spinner} {msg} ({elapsed})").expect("a valid template"));
    spinner.set_message(what.to_string());
    spinner.enable_steady_tick(Duration::from_millis(120));
    spinner
}
