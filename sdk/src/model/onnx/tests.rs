//! Bad input: an unsupported op names itself, truncated files and float graphs are refused.

use prost::Message;

use super::proto::{ModelProto, NodeProto, TensorProto};
use super::{OnnxError, import};

fn shipped() -> Vec<u8> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../models/digits/digits_int8.onnx"
    );
    std::fs::read(path).unwrap()
}

fn edited(edit: impl FnOnce(&mut ModelProto)) -> Vec<u8> {
    let mut model = ModelProto::decode(shipped().as_slice()).unwrap();
    edit(&mut model);
    model.encode_to_vec()
}

#[test]
fn an_unsupported_op_names_itself_and_its_node() {
    let bytes = edited(|m| {
        let gemm = m.graph.as_mut().unwrap().node.iter_mut();
        let fc2 = gemm.filter(|n| n.op_type() == "Gemm").nth(1).unwrap();
        fc2.op_type = Some("Softmax".into());
    });
    let err = import(&bytes).unwrap_err();
    assert_eq!(
        err,
        OnnxError::UnsupportedOp {
            node: "fc2".into(),
            op_type: "Softmax".into()
        }
    );
    assert!(err.to_string().contains("`fc2`") && err.to_string().contains("Softmax"));
}

#[test]
fn truncated_files_are_refused() {
    let bytes = shipped();
    for cut in [1, 100, bytes.len() / 2, bytes.len() - 1] {
        let err = import(&bytes[..cut]).unwrap_err();
        assert!(
            matches!(err, OnnxError::Decode(_) | OnnxError::NoGraph),
            "cut at {cut}: {err}"
        );
    }
    assert!(matches!(
        import(b"not onnx at all"),
        Err(OnnxError::Decode(_))
    ));
}

fn float_tensor(name: &str, dims: &[i64], values: &[f32]) -> TensorProto {
    TensorProto {
        name: Some(name.into()),
        dims: dims.to_vec(),
        data_type: Some(1),
        float_data: values.to_vec(),
        ..Default::default()
    }
}

#[test]
fn a_float_model_without_qdq_is_refused() {
    let bytes = edited(|m| {
        let g = m.graph.as_mut().unwrap();
        g.initializer = vec![
            float_tensor("w", &[10, 64], &[0.5; 640]),
            float_tensor("b", &[10], &[0.0; 10]),
        ];
        g.node = vec![NodeProto {
            name: Some("dense".into()),
            op_type: Some("Gemm".into()),
            input: vec!["pixels".into(), "w".into(), "b".into()],
            output: vec!["logits".into()],
            ..Default::default()
        }];
    });
    let err = import(&bytes).unwrap_err();
    assert_eq!(
        err,
        OnnxError::NotQuantized {
            node: "dense".into(),
            op_type: "Gemm".into(),
            tensor: "pixels".into()
        }
    );
    assert!(err.to_string().contains("quantize the model first"));
}

#[test]
fn a_scale_ratio_of_one_or_more_is_refused() {
    // Shrinking the first Gemm's output scale 10,000-fold makes its ratio exceed 1.
    let bytes = edited(|m| {
        let g = m.graph.as_mut().unwrap();
        let s = g
            .initializer
            .iter_mut()
            .find(|t| t.name() == "relu1_scale")
            .unwrap();
        let v = match s.raw_data() {
            [] => s.float_data[0],
            raw => f32::from_le_bytes(raw.try_into().unwrap()),
        };
        s.raw_data = None;
        s.float_data = vec![v / 10_000.0];
    });
    let err = import(&bytes).unwrap_err().to_string();
    assert!(
        err.contains("relu1_QuantizeLinear") && err.contains("right shifts only"),
        "{err}"
    );
}

fn initializer<'m>(m: &'m mut ModelProto, name: &str) -> &'m mut TensorProto {
    let g = m.graph.as_mut().unwrap();
    g.initializer.iter_mut().find(|t| t.name() == name).unwrap()
}

#[test]
fn matmul_with_k_by_n_weights_equals_gemm_with_n_by_k() {
    // fc2 as Gemm(transB = 1) with a zero bias ...
    let gemm = edited(|m| {
        let bias = initializer(m, "fc2.bias_quantized");
        bias.raw_data = Some(vec![0; bias.raw_data().len()]);
        bias.int32_data.iter_mut().for_each(|v| *v = 0);
    });
    // ... and as MatMul over the transposed [K, N] weights, without a bias.
    let matmul = edited(|m| {
        let w = initializer(m, "fc2.weight_quantized");
        let (n, k) = (w.dims[0] as usize, w.dims[1] as usize);
        let old = w.raw_data().to_vec();
        assert_eq!(old.len(), n * k, "int8 weights are stored raw");
        w.raw_data = Some((0..n * k).map(|i| old[(i % n) * k + i / n]).collect());
        w.dims = vec![k as i64, n as i64];
        let g = m.graph.as_mut().unwrap();
        let fc2 = g.node.iter_mut().find(|n| n.name() == "fc2").unwrap();
        fc2.op_type = Some("MatMul".into());
        fc2.attribute.clear();
        fc2.input.truncate(2);
    });
    let input = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../models/digits/heldout_input.bin"
    ))
    .unwrap();
    let run = |bytes: &[u8]| crate::model::run_cpu(&import(bytes).unwrap().model, &input).unwrap();
    let (a, b) = (run(&gemm), run(&matmul));
    assert_eq!(a, b);
    // The zero bias does change the outputs (the edit took effect).
    assert_ne!(a, run(&shipped()));
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

    /// Corrupted files (bytes overwritten anywhere) never panic: they import or are refused.
    #[test]
    fn corrupted_files_never_panic(
        edits in proptest::collection::vec((0usize..4845, proptest::num::u8::ANY), 1..8)
    ) {
        let mut bytes = shipped();
        for (at, v) in edits {
            let i = at % bytes.len();
            bytes[i] = v;
        }
        let _ = import(&bytes);
    }
}
