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
