//! The vendored data sets as the trainer's tests and benchmark read them.

use std::path::PathBuf;
use tclearn_member::trainer::Table;

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
