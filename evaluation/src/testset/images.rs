//! Image-folder test sets: one subfolder per class (`NORMAL/`, `PNEUMONIA/`), PNG or JPEG files.
//!
//! Each image is decoded (`zune-png`, `zune-jpeg`), converted to the declared number of channels
//! (luma as `0.299 R + 0.587 G + 0.114 B`; grey repeated for colour; alpha dropped), resized
//! bilinearly to the declared size (half-pixel centres, as OpenCV's `INTER_LINEAR`), scaled to
//! `[0, 1]`, normalised per channel as `(x - mean) / std`, and laid out channels first (`C×H×W`).
//! The same arithmetic in the same order on every validator: no library resampler whose output
//! could change with a version or a CPU feature.
//!
//! Labels are the class subfolders' positions in the declared class list (or, when none is
//! declared, in name order). The hash is SHA3-256 over a tag, the number of files and, in label
//! then name order, each file's path relative to the folder and the SHA3-256 of its bytes.

use super::{file_stem, list_dir, read, sha3, Result, TestSet, TestSetError};
use sha3::{Digest, Sha3_256};
use std::path::{Path, PathBuf};
pub use tclearn_model::genesis::ImageSpec;
use zune_core::{bytestream::ZCursor, options::DecoderOptions};

const FOLDER_TAG: &[u8] = b"tclearn/image-folder/v1";

/// List an image folder and hash it.
pub fn load(dir: &Path, spec: &ImageSpec) -> Result<TestSet> {
    spec.validate().map_err(|reason| TestSetError::Format { path: dir.to_path_buf(), reason })?;
    let subfolders: Vec<PathBuf> = list_dir(dir)?.into_iter().filter(|p| p.is_dir()).collect();
    let name = |p: &Path| p.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_string();
    let classes: Vec<String> =
        if spec.classes.is_empty() { subfolders.iter().map(|p| name(p)).collect() } else { spec.classes.clone() };
    for folder in &subfolders {
        if !classes.contains(&name(folder)) {
            return Err(TestSetError::Format {
                path: folder.clone(),
                reason: format!("not one of the declared classes {classes:?}"),
            });
        }
    }
    let mut hasher = Sha3_256::new();
    let mut entries = Vec::new();
    for (label, class) in classes.iter().enumerate() {
        let folder = dir.join(class);
        if !folder.is_dir() {
            continue;
        }
        for file in list_dir(&folder)? {
            let extension = file.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
            if !matches!(extension.as_deref(), Some("png" | "jpg" | "jpeg")) || file_stem(&file).is_empty() {
                continue;
            }
            let relative = format!("{class}/{}", name(&file));
            entries.push((relative, sha3(&read(&file)?), file, label));
        }
    }
    if entries.is_empty() {
        return Err(TestSetError::Empty(dir.to_path_buf()));
    }
    hasher.update(FOLDER_TAG);
    hasher.update((entries.len() as u64).to_le_bytes());
    for (relative, file_hash, _, _) in &entries {
        hasher.update((relative.len() as u64).to_le_bytes());
        hasher.update(relative.as_bytes());
        hasher.update(file_hash);
    }
    let targets = entries.iter().map(|(_, _, _, label)| *label as f64).collect();
    let files: Vec<(PathBuf, [u8; 32])> = entries.into_iter().map(|(_, hash, file, _)| (file, hash)).collect();
    Ok(TestSet {
        samples: files.len(),
        sample_shape: vec![spec.channels, spec.height, spec.width],
        targets,
        target_width: 1,
        hash: hasher.finalize().into(),
        inputs: super::Inputs::Images { files, spec: spec.clone() },
    })
}

/// Decode `file`, whose bytes must still hash to `hash`, as `spec` declares, and append its
/// `C×H×W` values to `out`.
pub fn decode(file: &Path, hash: &[u8; 32], spec: &ImageSpec, out: &mut Vec<f32>) -> Result<()> {
    let bytes = read(file)?;
    let bad = |reason: String| TestSetError::Format { path: file.to_path_buf(), reason };
    if sha3(&bytes) != *hash {
        return Err(bad("changed since the test set was hashed".into()));
    }
    let (pixels, width, height, components) = decode_pixels(&bytes).map_err(bad)?;
    if width == 0 || height == 0 || pixels.len() != width * height * components {
        return Err(bad(format!("{} bytes for {width}x{height} pixels of {components} components", pixels.len())));
    }
    let grey = to_channels(&pixels, components, spec.channels).map_err(bad)?;
    let resized = resize_bilinear(&grey, width, height, spec.channels, spec.width, spec.height);
    // Channels first.
    let plane = spec.width * spec.height;
    for channel in 0..spec.channels {
        let (mean, std) = (spec.mean[channel], spec.std[channel]);
        out.extend((0..plane).map(|i| (resized[i * spec.channels + channel] / 255.0 - mean) / std));
    }
    Ok(())
}

/// 8-bit pixels (interleaved), width, height and components of a PNG or JPEG file.
fn decode_pixels(bytes: &[u8]) -> core::result::Result<(Vec<u8>, usize, usize, usize), String> {
    if bytes.starts_with(b"\x89PNG") {
        let options = DecoderOptions::default().png_set_strip_to_8bit(true);
        let mut decoder = zune_png::PngDecoder::new_with_options(ZCursor::new(bytes), options);
        let pixels = decoder.decode().map_err(|e| format!("PNG: {e:?}"))?;
        let pixels = pixels.u8().ok_or("PNG: not 8-bit after stripping")?;
        let (width, height) = decoder.dimensions().ok_or("PNG: no dimensions")?;
        let components = decoder.colorspace().ok_or("PNG: no colour space")?.num_components();
        Ok((pixels, width, height, components))
    } else if bytes.starts_with(&[0xff, 0xd8]) {
        let mut decoder = zune_jpeg::JpegDecoder::new(ZCursor::new(bytes));
        let pixels = decoder.decode().map_err(|e| format!("JPEG: {e:?}"))?;
        let info = decoder.info().ok_or("JPEG: no header")?;
        let components = decoder.output_colorspace().ok_or("JPEG: no colour space")?.num_components();
        Ok((pixels, usize::from(info.width), usize::from(info.height), components))
    } else {
        Err("neither PNG nor JPEG".into())
    }
}

/// Interleaved `components`-channel pixels to `channels` channels, as `f32` in `0..=255`.
fn to_channels(pixels: &[u8], components: usize, channels: usize) -> core::result::Result<Vec<f32>, String> {
    let colour = match components {
        1 | 2 => false,
        3 | 4 => true,
        other => return Err(format!("{other} components per pixel")),
    };
    let mut out = Vec::with_capacity(pixels.len() / components * channels);
    for p in pixels.chunks_exact(components) {
        let (r, g, b) = if colour { (p[0], p[1], p[2]) } else { (p[0], p[0], p[0]) };
        let (r, g, b) = (f32::from(r), f32::from(g), f32::from(b));
        if channels == 1 {
            out.push(if colour { 0.299 * r + 0.587 * g + 0.114 * b } else { r });
        } else {
            out.extend([r, g, b]);
        }
    }
    Ok(out)
}

/// Bilinear resize of interleaved `channels`-channel pixels, half-pixel centres, edges clamped.
pub fn resize_bilinear(
    pixels: &[f32],
    width: usize,
    height: usize,
    channels: usize,
    new_width: usize,
    new_height: usize,
) -> Vec<f32> {
    let mut out = Vec::with_capacity(new_width * new_height * channels);
    let source = |size: usize, new_size: usize, i: usize| -> (usize, usize, f32) {
        let x = ((i as f32 + 0.5) * size as f32 / new_size as f32 - 0.5).max(0.0);
        let low = (x.floor() as usize).min(size - 1);
        let high = (low + 1).min(size - 1);
        (low, high, x - low as f32)
    };
    for y in 0..new_height {
        let (y0, y1, fy) = source(height, new_height, y);
        for x in 0..new_width {
            let (x0, x1, fx) = source(width, new_width, x);
            for c in 0..channels {
                let at = |yy: usize, xx: usize| pixels[(yy * width + xx) * channels + c];
                let top = at(y0, x0) + (at(y0, x1) - at(y0, x0)) * fx;
                let bottom = at(y1, x0) + (at(y1, x1) - at(y1, x0)) * fx;
                out.push(top + (bottom - top) * fy);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(side: usize, channels: usize) -> ImageSpec {
        ImageSpec {
            height: side,
            width: side,
            channels,
            mean: vec![0.0; channels],
            std: vec![1.0; channels],
            classes: vec![],
        }
    }

    #[test]
    fn bilinear_resizing_matches_hand_computed_values() {
        // 2×2 to 4×4: output pixel centres fall at -0.25, 0.25, 0.75, 1.25 in source pixels.
        let out = resize_bilinear(&[0.0, 100.0, 200.0, 300.0], 2, 2, 1, 4, 4);
        assert_eq!(&out[..4], &[0.0, 25.0, 75.0, 100.0]);
        assert_eq!(&out[4..8], &[50.0, 75.0, 125.0, 150.0]);
        // Same size is the identity; 4×4 to 2×2 averages each 2×2 block's centre.
        let ramp: Vec<f32> = (0..16).map(|v| v as f32).collect();
        assert_eq!(resize_bilinear(&ramp, 4, 4, 1, 4, 4), ramp);
        assert_eq!(resize_bilinear(&ramp, 4, 4, 1, 2, 2), vec![2.5, 4.5, 10.5, 12.5]);
    }

    #[test]
    fn chest_xray_layout_with_jpeg_and_rgb_png_loads_and_bad_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        for class in ["NORMAL", "PNEUMONIA"] {
            std::fs::create_dir(dir.path().join(class)).unwrap();
        }
        // A 16×16 grey gradient as JPEG (quality 100), an RGB PNG, and a stray text file.
        let gradient: Vec<u8> = (0..256).map(|i| ((i % 16) * 16) as u8).collect();
        jpeg_encoder::Encoder::new_file(dir.path().join("NORMAL/a.jpeg"), 100)
            .unwrap()
            .encode(&gradient, 16, 16, jpeg_encoder::ColorType::Luma)
            .unwrap();
        let rgb: Vec<u8> = (0..4).flat_map(|_| [255u8, 0, 0]).collect();
        let options = zune_core::options::EncoderOptions::new(
            2,
            2,
            zune_core::colorspace::ColorSpace::RGB,
            zune_core::bit_depth::BitDepth::Eight,
        );
        let mut png = Vec::new();
        zune_png::PngEncoder::new(&rgb, options).encode(&mut png).unwrap();
        std::fs::write(dir.path().join("PNEUMONIA/b.PNG"), &png).unwrap();
        std::fs::write(dir.path().join("PNEUMONIA/notes.txt"), "not an image").unwrap();

        let set = TestSet::open(dir.path(), Some(&spec(4, 1))).unwrap();
        assert_eq!((set.samples, set.targets.as_slice()), (2, &[0.0, 1.0][..]));
        let inputs = set.inputs(0..2).unwrap();
        // The gradient resized 16 to 4: centres at columns 1.5, 5.5, 9.5, 13.5 → 24, 88, 152, 216.
        for (got, want) in inputs[..4].iter().zip([24.0, 88.0, 152.0, 216.0]) {
            assert!((got * 255.0 - want).abs() < 3.0, "{got}");
        }
        assert_eq!(inputs.len(), 2 * 16);
        // Pure red in grey is 0.299.
        assert!(inputs[16..].iter().all(|v| (v - 0.299).abs() < 1e-6), "{:?}", &inputs[16..]);
        let three = TestSet::open(dir.path(), Some(&spec(2, 3))).unwrap();
        assert_eq!(three.inputs(1..2).unwrap().as_ref(), &[1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]);

        // The hash changes with any file's bytes.
        std::fs::write(dir.path().join("PNEUMONIA/b.PNG"), &png[..png.len() - 1]).unwrap();
        let changed = set.inputs(1..2).unwrap_err().to_string();
        assert!(changed.contains("changed since the test set was hashed"), "{changed}");
        let truncated = TestSet::open(dir.path(), Some(&spec(4, 1))).unwrap();
        assert_ne!(truncated.hash, set.hash);
        let error = truncated.inputs(1..2).unwrap_err().to_string();
        assert!(error.contains("PNG"), "a truncated PNG is refused when decoded: {error}");
        std::fs::write(dir.path().join("PNEUMONIA/b.PNG"), &png).unwrap();
        std::fs::write(dir.path().join("PNEUMONIA/c.jpg"), b"GIF89a").unwrap();
        let error = TestSet::open(dir.path(), Some(&spec(4, 1))).unwrap().inputs(0..3).unwrap_err().to_string();
        assert!(error.contains("c.jpg: neither PNG nor JPEG"), "{error}");
        std::fs::create_dir(dir.path().join("COVID")).unwrap();
        let mut declared = spec(4, 1);
        declared.classes = vec!["NORMAL".into(), "PNEUMONIA".into()];
        let error = TestSet::open(dir.path(), Some(&declared)).unwrap_err().to_string();
        assert!(error.contains("COVID: not one of the declared classes"), "{error}");
        assert!(matches!(TestSet::open(dir.path(), None), Err(TestSetError::NoImageSpec(_))));
    }
}
