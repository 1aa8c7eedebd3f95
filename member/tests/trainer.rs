//! The trainer on real data (vendored in `datasets/`): the perceptron on breast cancer, the
//! image network on handwritten digits. The loss falls, with and without DP-SGD; the per-example
//! gradients are the loss's; the ONNX it writes computes what burn computes (through ONNX
//! Runtime) and keeps the genesis architecture hash.

mod common;

use common::{breast_cancer, breast_cancer_standardisation, pixels};
use std::path::PathBuf;
use tclearn_evaluation::engine::{default_library, Engine};
use tclearn_evaluation::testset::TestSet;
use tclearn_member::{
    dp_sgd::DpSgd,
    privacy,
    trainer::{self, CnnParameters, MlpParameters, Model, Network, Table, Training},
};
use tclearn_model::checks::{self as model, TensorSpec};
use tclearn_model::genesis::{Declaration, Metric};

fn training(privacy: Option<DpSgd>) -> Training {
    Training { learning_rate: 0.1, epochs: 5, batch_size: 32, privacy, delta: 1e-5, seed: Some(7) }
}

#[test]
fn the_loss_falls_on_breast_cancer_and_the_held_out_accuracy_rises() {
    let (train, held_out) = breast_cancer().split_local(0.2, 1);
    let genesis = MlpParameters::init(&breast_cancer_standardisation(), 16, 2, 3).unwrap();
    let mut model = genesis.clone();
    // Inputs scaled by their public ranges are worse conditioned than standardised ones (the
    // loss stalls near 0.22 from epoch 5 to 20): more epochs.
    let report = trainer::train(&mut model, &train, &Training { epochs: 50, ..training(None) }, |_, _| {}).unwrap();
    assert_eq!((report.examples, report.steps), (455, 15 * 50));
    assert!(report.loss_after < 0.5 * report.loss_before, "{report:?}");
    assert!(model.accuracy(&held_out) > 0.93, "held-out accuracy {}", model.accuracy(&held_out));
    assert!(model.accuracy(&held_out) > genesis.accuracy(&held_out));
    assert_eq!(
        (model.shift.clone(), model.scale.clone()),
        (genesis.shift, genesis.scale),
        "standardisation is not trained"
    );
}

#[test]
fn dp_sgd_learns_and_reports_what_the_accountant_charges() {
    let (train, held_out) = breast_cancer().split_local(0.2, 1);
    let mut model = MlpParameters::init(&breast_cancer_standardisation(), 16, 2, 3).unwrap();
    let dp = DpSgd { clip_norm: 1.0, noise_multiplier: 1.0 };
    // A larger step than the default, for inputs scaled by their public ranges.
    let report =
        trainer::train(&mut model, &train, &Training { learning_rate: 0.3, ..training(Some(dp)) }, |_, _| {}).unwrap();
    assert!(report.loss_after < 0.7 * report.loss_before, "{report:?}");
    assert!(model.accuracy(&held_out) > 0.85, "held-out accuracy {}", model.accuracy(&held_out));
    let (epsilon, _) = privacy::dp_sgd_epsilon(32.0 / 455.0, 1.0, report.steps, 1e-5).unwrap();
    assert_eq!(report.privacy, Some((epsilon, 1e-5)));
    assert!(epsilon > 0.5 && epsilon < 10.0, "{epsilon}");
}

#[test]
fn per_example_gradients_are_the_derivatives_of_each_examples_loss() {
    let data = breast_cancer().select(&[0, 1, 200, 568]);
    let model = MlpParameters::init(&breast_cancer_standardisation(), 4, 2, 5).unwrap();
    let n = model.trained().len();
    // Central differences in f32 at steps of 1e-2 are within 2e-3.
    check_gradients(&model, &data, &[0, 7, n - 1, n - 3, 4 * 30 + 1], 1e-2);
}

#[test]
fn the_exported_onnx_computes_what_burn_computes_and_keeps_the_architecture() {
    let data = breast_cancer();
    let genesis = MlpParameters::init(&breast_cancer_standardisation(), 16, 2, 3).unwrap();
    let mut trained = genesis.clone();
    trainer::train(&mut trained, &data, &Training { epochs: 1, ..training(None) }, |_, _| {}).unwrap();
    let (genesis_onnx, trained_onnx) = (genesis.to_onnx().unwrap(), trained.to_onnx().unwrap());

    // Read back, the weights are the trained ones.
    assert_eq!(MlpParameters::from_onnx(&trained_onnx).unwrap(), trained);
    // As a delta merged onto the parent (what the members' API does), within float rounding.
    let merged = tclearn_model::delta::merge(&genesis_onnx, &trainer::delta(&genesis, &trained)).unwrap();
    let merged = MlpParameters::from_onnx(&merged).unwrap();
    let worst = merged.trained().iter().zip(trained.trained()).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
    assert!(worst < 1e-6 && merged.shift == trained.shift, "{worst}");

    // The oracle's checks pass, with the genesis architecture hash.
    let spec = |width| TensorSpec { dims: vec![None, Some(width)] };
    let mut policy = Declaration::new(Metric::Accuracy, spec(30), spec(2)).policy();
    let architecture = model::check(&genesis_onnx, &policy).unwrap().architecture_hash;
    policy.architecture_hash = Some(architecture);
    assert_eq!(model::check(&trained_onnx, &policy).unwrap().architecture_hash, architecture);
    // Another width is another architecture.
    let wider = MlpParameters::init(&breast_cancer_standardisation(), 17, 2, 3).unwrap().to_onnx().unwrap();
    assert!(model::check(&wider, &policy).is_err());

    // ONNX Runtime's logits are burn's, to 1e-4, on all 569 rows, in batches of any size.
    let engine = Engine::new(default_library().as_deref(), 1).expect("ONNX Runtime (scripts/setup.sh installs it)");
    let mut session = engine.load(&trained_onnx).unwrap();
    let onnx = session.predict(&data.features, &[30], 100).unwrap();
    let burn = trained.logits(&data);
    assert_eq!((onnx.width, onnx.values.len()), (2, burn.len()));
    let worst = onnx.values.iter().zip(&burn).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
    assert!(worst < 1e-4, "largest difference {worst}");
}

#[test]
fn bad_data_and_settings_are_refused_with_their_reason() {
    let data = breast_cancer();
    let mut model = MlpParameters::init(&breast_cancer_standardisation(), 4, 2, 1).unwrap();
    let mut narrow = data.select(&[0, 1]);
    narrow.width = 15;
    let error = trainer::train(&mut model, &narrow, &training(None), |_, _| {}).unwrap_err();
    assert_eq!(error.to_string(), "15 features per row; the model takes 30");
    let mut three = data.select(&[0, 1]);
    three.labels[1] = 2;
    assert_eq!(
        trainer::train(&mut model, &three, &training(None), |_, _| {}).unwrap_err().to_string(),
        "label 2; the model has 2 classes"
    );
    let zero = Training { epochs: 0, ..training(None) };
    assert!(trainer::train(&mut model, &data, &zero, |_, _| {}).is_err());
    let no_noise = training(Some(DpSgd { clip_norm: 1.0, noise_multiplier: 0.0 }));
    assert!(trainer::train(&mut model, &data, &no_noise, |_, _| {}).is_err());
    assert!(MlpParameters::from_onnx(b"not onnx").is_err());

    let dir = std::env::temp_dir().join(format!("tclearn-trainer-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.csv");
    std::fs::write(&bad, "id,a,b,label\nx,1,2,0\ny,1,oops,1\n").unwrap();
    assert_eq!(
        Table::read_csv(&bad).unwrap_err().to_string(),
        format!("{}, line 3: \"oops\" is not a number", bad.display())
    );
    std::fs::write(&bad, "id,a,b,label\nx,1,2,0\ny,1,1\n").unwrap();
    assert!(Table::read_csv(&bad).unwrap_err().to_string().contains("line 3: 1 features; earlier rows have 2"));
    let good = dir.join("good.csv");
    std::fs::write(&good, "id,a,b,label\nx,1,2,0\ny,3,4,1\n").unwrap();
    let table = Table::read_csv(&good).unwrap();
    assert_eq!(
        (table.ids.clone(), table.features.clone(), table.labels.clone()),
        (vec!["x".into(), "y".into()], vec![1.0, 2.0, 3.0, 4.0], vec![0, 1])
    );
    assert_eq!(table.to_test_set_csv(), "1,2,0\n3,4,1\n");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The 1,797 digits, 64 pixels each, read by the oracle's test-set reader (it decodes gzip).
fn digits() -> Table {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../datasets/digits/digits.csv.gz");
    let set = TestSet::open(&path, None).expect("the vendored data set");
    Table {
        ids: (0..set.samples).map(|i| format!("digit-{i}")).collect(),
        features: set.inputs(0..set.samples).unwrap().into_owned(),
        labels: set.labels().unwrap(),
        width: 64,
    }
}

/// Each example's gradient in a batch is its gradient alone, and central differences of steps
/// `step` of its loss agree with it at `coordinates` (one-sided ones where a kink lies within
/// the step, at most a quarter of them).
fn check_gradients<N: Network>(model: &N, data: &Table, coordinates: &[usize], step: f32) {
    let gradients = model.per_example_gradients(data, &(0..data.len()).collect::<Vec<_>>());
    let trained = model.trained();
    let mut checked = 0;
    for (example, gradient) in gradients.iter().enumerate() {
        assert_eq!(gradient.len(), trained.len());
        let single = &model.per_example_gradients(data, &[example])[0];
        let apart = gradient.iter().zip(single).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        assert!(apart < 1e-5, "example {example}: in a batch and alone differ by {apart}");
        let alone = data.select(&[example]);
        for &coordinate in coordinates {
            let loss_at = |delta: f32| {
                let mut moved = model.clone();
                let mut values = trained.clone();
                values[coordinate] += delta;
                moved.set_trained(&values);
                moved.loss(&alone)
            };
            let analytic = f64::from(gradient[coordinate]);
            let near = |numeric: f64| (numeric - analytic).abs() < 2e-3;
            let central = |h: f32| (loss_at(h) - loss_at(-h)) / f64::from(2.0 * h);
            if near(central(step)) || near(central(step / 4.0)) {
                checked += 1;
                continue;
            }
            // A ReLU or pooling kink within the step: the gradient is the slope on its own side.
            let (h, at) = (f64::from(step), loss_at(0.0));
            let (forward, backward) = ((loss_at(step) - at) / h, (at - loss_at(-step)) / h);
            assert!(
                near(forward) || near(backward),
                "example {example}, coordinate {coordinate}: {analytic} against central {}, forward {forward}, backward {backward}",
                central(step)
            );
        }
    }
    // Kinks are rare: most coordinates are checked by central differences (at the step or a
    // quarter of it).
    let all = gradients.len() * coordinates.len();
    assert!(checked * 4 >= all * 3, "{checked} of {all} coordinates away from a kink");
}

#[test]
fn the_image_networks_per_example_gradients_are_each_examples() {
    // Continuous pixels: digits' integer pixels tie in max pooling, where the loss has kinks
    // that central differences straddle.
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(11);
    let data = Table {
        ids: (0..5).map(|i| i.to_string()).collect(),
        features: (0..5 * 64).map(|_| rng.random_range(0.0..16.0)).collect(),
        labels: vec![0, 3, 9, 3, 1],
        width: 64,
    };
    let model = CnnParameters::init(&pixels(), [1, 8, 8], 4, 10, 5).unwrap();
    let n = model.trained().len();
    // Kernel weights, a kernel bias, dense weights, a dense bias; small steps, so that few
    // ReLU and pooling kinks lie between the two points.
    check_gradients(&model, &data, &[0, 5, 35, 36, 37, 40, 100, n - 11, n - 1], 1e-3);
}

#[test]
fn the_image_network_learns_digits_and_its_onnx_computes_what_burn_computes() {
    let (train, held_out) = digits().split_local(0.2, 2);
    let genesis = CnnParameters::init(&pixels(), [1, 8, 8], 8, 10, 3).unwrap();
    let mut model = genesis.clone();
    let report = trainer::train(&mut model, &train, &Training { epochs: 3, ..training(None) }, |_, _| {}).unwrap();
    assert!(report.loss_after < 0.3 * report.loss_before, "{report:?}");
    assert!(model.accuracy(&held_out) > 0.9, "held-out accuracy {}", model.accuracy(&held_out));
    let dp = training(Some(DpSgd { clip_norm: 1.0, noise_multiplier: 1.0 }));
    let mut private = genesis.clone();
    let report = trainer::train(&mut private, &train, &Training { epochs: 2, ..dp }, |_, _| {}).unwrap();
    assert!(private.accuracy(&held_out) > 0.6 && report.privacy.is_some(), "DP-SGD: {}", private.accuracy(&held_out));

    let (genesis_onnx, trained_onnx) = (genesis.to_onnx().unwrap(), model.to_onnx().unwrap());
    assert_eq!(Model::from_onnx(&trained_onnx).unwrap(), Model::Cnn(model.clone()));
    // Its input is the image batch, as the oracle reads an image test set.
    let input = TensorSpec { dims: vec![None, Some(1), Some(8), Some(8)] };
    let mut policy = Declaration::new(Metric::Accuracy, input, TensorSpec { dims: vec![None, Some(10)] }).policy();
    let architecture = model::check(&genesis_onnx, &policy).unwrap().architecture_hash;
    policy.architecture_hash = Some(architecture);
    assert_eq!(model::check(&trained_onnx, &policy).unwrap().architecture_hash, architecture);
    let engine = Engine::new(default_library().as_deref(), 1).expect("ONNX Runtime (scripts/setup.sh installs it)");
    let onnx = engine.load(&trained_onnx).unwrap().predict(&held_out.features, &[1, 8, 8], 50).unwrap();
    let burn = model.logits(&held_out);
    let worst = onnx.values.iter().zip(&burn).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
    assert!(onnx.values.len() == burn.len() && worst < 1e-4, "largest difference {worst}");
}
