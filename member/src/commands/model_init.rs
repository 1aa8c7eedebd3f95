//! `tclearn model init`: a genesis model for the coalition's architecture.

use super::*;

/// `tclearn model init`.
#[derive(clap::Args)]
pub struct InitArgs {
    /// The inputs' public ranges (JSON: `source`, and `ranges` of `low` and `high`: one per
    /// feature for the perceptron, one per pixel or one for all with `--image`): the model
    /// standardises each input to about `[−1, 1]` with them. Never computed from patients'
    /// rows: the genesis model is public to every member. `tclearn found` takes the same file
    /// and seed.
    #[arg(long)]
    standardisation: PathBuf,
    /// Hidden units of the tabular perceptron.
    #[arg(long, default_value_t = 16, conflicts_with = "image")]
    hidden: usize,
    /// Make the image network instead, for rows that are images of `CxHxW` pixels (`1x8x8`).
    #[arg(long, value_parser = parse_image)]
    image: Option<[usize; 3]>,
    /// The image network's convolution filters.
    #[arg(long, default_value_t = 8, requires = "image")]
    filters: usize,
    /// Classes.
    #[arg(long, default_value_t = 2)]
    classes: usize,
    /// Seed of the initial weights.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Where the ONNX model goes.
    #[arg(long)]
    out: PathBuf,
}

fn parse_image(text: &str) -> Result<[usize; 3], String> {
    let sides: Vec<usize> = text
        .split('x')
        .map(|v| v.trim().parse::<usize>())
        .collect::<Result<_, _>>()
        .map_err(|_| "CxHxW, like 1x8x8".to_string())?;
    <[usize; 3]>::try_from(sides).map_err(|_| "CxHxW, like 1x8x8".to_string())
}

/// `tclearn model init`.
pub fn model_init(g: &Global, args: InitArgs) -> Result<i32> {
    let standardisation = Standardisation::load(&args.standardisation)?;
    let (onnx, what) = match args.image {
        Some(image) => {
            let model = CnnParameters::init(&standardisation, image, args.filters, args.classes, args.seed)?;
            let [c, h, w] = image;
            (
                model.to_onnx()?,
                format!("{c}x{h}x{w} image network with {} filters and {} classes", args.filters, args.classes),
            )
        }
        None => {
            let model = MlpParameters::init(&standardisation, args.hidden, args.classes, args.seed)?;
            (model.to_onnx()?, format!("{}-{}-{} perceptron", model.inputs, model.hidden, model.classes))
        }
    };
    std::fs::write(&args.out, &onnx).with_context(|| args.out.display().to_string())?;
    let hash = format!("0x{}", hex::encode(tclearn_model::hash::model_hash(&onnx)));
    if g.json {
        println!("{}", json!({ "out": args.out, "hash": hash, "model": what }));
    } else {
        println!("{what}, hash {}, written to {}", short(&hash), args.out.display());
    }
    Ok(0)
}
