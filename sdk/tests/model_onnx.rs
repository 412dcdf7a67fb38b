//! The shipped digits model (`models/digits/`, made by its `train.py`): imported from its
//! int8 ONNX file, run on the CPU reference over the committed held-out set, it agrees with
//! onnxruntime's committed predictions and keeps the float model's accuracy.

use std::path::PathBuf;

use stp_sdk::model::onnx::import;
use stp_sdk::model::{ops::i32s, run_cpu};

fn digits(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../models/digits")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The share of `classes` equal to the one-byte classes in `bytes`.
fn share_equal(classes: &[i32], bytes: &[u8]) -> f64 {
    let equal = classes
        .iter()
        .zip(bytes)
        .filter(|&(&c, &b)| c == i32::from(b))
        .count();
    equal as f64 / classes.len() as f64
}

/// Accuracy of the float model on the held-out set (`summary.json`, written by train.py).
fn float_accuracy() -> f64 {
    let summary: serde_json::Value = serde_json::from_slice(&digits("summary.json")).unwrap();
    summary["float_onnx_accuracy"].as_f64().unwrap()
}

#[test]
#[allow(
    clippy::print_stderr,
    reason = "the measured accuracy is the test's report"
)]
fn digits_agree_with_onnxruntime() {
    let imported = import(&digits("digits_int8.onnx")).expect("the shipped model imports");
    let (input, labels, ort) = (
        digits("heldout_input.bin"),
        digits("heldout_labels.bin"),
        digits("heldout_ort.bin"),
    );
    assert_eq!(input.len(), labels.len() * 64);
    assert_eq!(ort.len(), labels.len());
    let out = run_cpu(&imported.model, &input).unwrap();
    assert_eq!(out.batch as usize, labels.len());
    let classes = i32s(&out.outputs[1]);
    let n = labels.len() as f64;
    let agree = share_equal(&classes, &ort);
    let accuracy = share_equal(&classes, &labels);
    let ort_accuracy = ort.iter().zip(&labels).filter(|(o, l)| o == l).count() as f64 / n;
    let float = float_accuracy();
    eprintln!(
        "digits held-out ({} samples): ours {accuracy:.4}, onnxruntime int8 {ort_accuracy:.4}, float {float:.4}; agreement with onnxruntime {agree:.4}; max scale error {:.2e}",
        labels.len(),
        imported.max_scale_error()
    );
    assert!(agree >= 0.995, "agreement {agree} below 99.5 %");
    assert!(
        accuracy >= float - 0.01,
        "accuracy {accuracy} vs float {float}"
    );
    assert!(imported.max_scale_error() < 1e-8);
    assert_eq!(imported.scales.len(), 2, "one requantization per layer");
}

#[test]
fn first_layer_accumulators_equal_numpy() {
    let imported = import(&digits("digits_int8.onnx")).unwrap();
    // The same graph, with the first fully-connected op's int32 output also returned.
    let mut model = imported.model.model().clone();
    let fc1 = model.ops[0].output();
    assert_eq!(model.ops[0].name(), "fully-connected");
    model.outputs.push(fc1);
    let model = stp_sdk::model::ValidModel::new(model).unwrap();
    let out = run_cpu(&model, &digits("heldout_input.bin")).unwrap();
    let numpy = digits("heldout_fc1_acc.bin");
    assert_eq!(numpy.len(), 450 * 32 * 4);
    assert!(out.outputs[2] == numpy, "accumulators differ from NumPy's");
}

/// onnxruntime requantizes in float (round half to even) where the model format uses
/// gemmlowp's fixed point, so an int8 logit may differ by one step, never more.
#[test]
#[allow(
    clippy::print_stderr,
    reason = "the measured agreement is the test's report"
)]
fn digits_logits_within_one_step_of_onnxruntime() {
    let imported = import(&digits("digits_int8.onnx")).unwrap();
    let out = run_cpu(&imported.model, &digits("heldout_input.bin")).unwrap();
    let ort = digits("heldout_ort_logits.bin");
    assert_eq!(out.outputs[0].len(), ort.len());
    let diffs: Vec<i32> = out.outputs[0]
        .iter()
        .zip(&ort)
        .map(|(&a, &b)| (a as i8 as i32 - b as i8 as i32).abs())
        .collect();
    let equal = diffs.iter().filter(|&&d| d == 0).count();
    eprintln!(
        "int8 logits equal to onnxruntime's: {equal} of {} ({:.2} %)",
        diffs.len(),
        100.0 * equal as f64 / diffs.len() as f64
    );
    assert!(
        diffs.iter().all(|&d| d <= 1),
        "a logit differs by more than one step"
    );
    assert!(equal as f64 >= 0.98 * diffs.len() as f64);
}

fn cnn(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../models/digits_cnn")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The convolutional digits model (`models/digits_cnn/`) in one of onnxruntime's two int8
/// forms: imported, run on the CPU reference over the held-out set, it agrees with
/// onnxruntime's classes and logits and keeps its accuracy.
#[allow(
    clippy::print_stderr,
    reason = "the measured agreement is the test's report"
)]
fn cnn_agrees_with_onnxruntime(form: &str) {
    let imported = import(&cnn(&format!("digits_cnn_{form}.onnx"))).expect("the CNN imports");
    let ops: Vec<&str> = imported
        .model
        .model()
        .ops
        .iter()
        .map(|o| o.name())
        .collect();
    assert_eq!(
        ops,
        [
            "conv-2d",
            "requantize",
            "max-pool-2d",
            "conv-2d",
            "requantize",
            "max-pool-2d",
            "reshape",
            "fully-connected",
            "requantize",
            "argmax"
        ],
        "{form}"
    );
    let (input, labels) = (cnn("heldout_input.bin"), cnn("heldout_labels.bin"));
    let ort = cnn(&format!("heldout_ort_{form}.bin"));
    let ort_logits = cnn(&format!("heldout_ort_{form}_logits.bin"));
    let out = run_cpu(&imported.model, &input).unwrap();
    let classes = i32s(&out.outputs[1]);
    let (agree, accuracy) = (share_equal(&classes, &ort), share_equal(&classes, &labels));
    let steps: Vec<i32> = out.outputs[0]
        .iter()
        .zip(&ort_logits)
        .map(|(&a, &b)| (a as i8 as i32 - b as i8 as i32).abs())
        .collect();
    let equal = steps.iter().filter(|&&d| d == 0).count();
    eprintln!(
        "digits CNN ({form}): accuracy {accuracy:.4}, agreement with onnxruntime {agree:.4}, int8 logits equal {equal} of {}, largest difference {} steps, max scale error {:.2e}",
        steps.len(),
        steps.iter().max().unwrap(),
        imported.max_scale_error()
    );
    assert!(agree >= 0.995, "{form}: agreement {agree} below 99.5 %");
    assert!(
        equal as f64 >= 0.9 * steps.len() as f64,
        "{form}: {equal} equal logits"
    );
    let summary: serde_json::Value = serde_json::from_slice(&cnn("summary.json")).unwrap();
    let float = summary["float_onnx_accuracy"].as_f64().unwrap();
    assert!(
        accuracy >= float - 0.02,
        "{form}: accuracy vs float {float}"
    );
}

#[test]
fn the_cnn_in_qdq_form_agrees_with_onnxruntime() {
    cnn_agrees_with_onnxruntime("qdq");
}

#[test]
fn the_cnn_in_qoperator_form_agrees_with_onnxruntime() {
    cnn_agrees_with_onnxruntime("qop");
}

#[test]
fn both_forms_of_the_cnn_import_to_the_same_model() {
    let qdq = import(&cnn("digits_cnn_qdq.onnx")).unwrap().model;
    let qop = import(&cnn("digits_cnn_qop.onnx")).unwrap().model;
    assert_eq!(qdq.id(), qop.id(), "same integers, same graph, same file");
}
