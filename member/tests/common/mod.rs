//! The vendored data sets as the member's tests and benchmark read them.
#![allow(dead_code)] // Each test crate uses its own part.

use std::path::PathBuf;
use tclearn_member::trainer::{Standardisation, Table};
use tclearn_model::genesis::InputRange;

/// The vendored breast-cancer file (scikit-learn's layout: a header line, then 30 features and
/// the label per row).
pub fn breast_cancer_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../datasets/breast-cancer/breast_cancer.csv")
}

/// Its 569 rows, each with its row number as identifier (`wdbc-<row>`).
pub fn breast_cancer() -> Table {
    let text = std::fs::read_to_string(breast_cancer_path()).expect("the vendored data set");
    let mut table = Table { ids: Vec::new(), features: Vec::new(), labels: Vec::new(), width: 30 };
    for (row, line) in text.lines().skip(1).enumerate() {
        let fields: Vec<&str> = line.split(',').collect();
        table.features.extend(fields[..30].iter().map(|v| v.parse::<f32>().expect("a number")));
        table.labels.push(fields[30].parse().expect("a label"));
        table.ids.push(format!("wdbc-{row}"));
    }
    table
}

/// Breast-cancer rows by row number: as a member's data (`identifier,features,label` after a
/// header, identifiers `wdbc-<row>`) or as an oracle's test set (`features,label`).
pub fn breast_cancer_rows(rows: impl Iterator<Item = usize>, with_ids: bool) -> String {
    let text = std::fs::read_to_string(breast_cancer_path()).expect("the vendored data set");
    let lines: Vec<&str> = text.lines().skip(1).collect();
    let header = if with_ids {
        format!("id,{},label\n", (0..30).map(|j| format!("x{j}")).collect::<Vec<_>>().join(","))
    } else {
        String::new()
    };
    header
        + &rows
            .map(|r| if with_ids { format!("wdbc-{r},{}\n", lines[r]) } else { format!("{}\n", lines[r]) })
            .collect::<String>()
}

/// The public ranges of the breast-cancer features that the data set's description lists
/// (`datasets/breast-cancer/standardisation.json`), as founders declare them.
pub fn breast_cancer_standardisation_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../datasets/breast-cancer/standardisation.json")
}

/// Those ranges.
pub fn breast_cancer_standardisation() -> Standardisation {
    Standardisation::load(&breast_cancer_standardisation_path()).expect("the vendored ranges")
}

/// The digits' pixels: integers in 0..16, as the data set's description says.
pub fn pixels() -> Standardisation {
    Standardisation {
        source: "datasets/digits/digits.rst: integer pixels in the range 0..16".into(),
        ranges: vec![InputRange { name: None, low: 0.0, high: 16.0 }],
    }
}
