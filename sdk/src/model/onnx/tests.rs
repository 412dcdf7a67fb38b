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

/// The shipped graph with `h + h` (quantized with h's own scale and zero point) between
/// the hidden layer `h` and fc2.
fn with_doubled_hidden_layer() -> Vec<u8> {
    edited(|m| {
        let g = m.graph.as_mut().unwrap();
        let node = |op: &str, name: &str, input: &[&str], output: &str| NodeProto {
            name: Some(name.into()),
            op_type: Some(op.into()),
            input: input.iter().map(|s| s.to_string()).collect(),
            output: vec![output.into()],
            ..Default::default()
        };
        let h = "relu1_DequantizeLinear_Output";
        let at = g.node.iter().position(|n| n.name() == "fc2").unwrap();
        let qparams = ["relu1_scale", "relu1_zero_point"];
        g.node.insert(at, node("Add", "double", &[h, h], "sum"));
        g.node.insert(
            at + 1,
            node(
                "QuantizeLinear",
                "sum_q",
                &["sum", qparams[0], qparams[1]],
                "sum_int8",
            ),
        );
        g.node.insert(
            at + 2,
            node(
                "DequantizeLinear",
                "sum_dq",
                &["sum_int8", qparams[0], qparams[1]],
                "sum_float",
            ),
        );
        g.node[at + 3].input[0] = "sum_float".into();
    })
}

#[test]
fn qdq_add_maps_to_the_int8_add() {
    let imported = import(&with_doubled_hidden_layer()).unwrap();
    let mut model = imported.model.model().clone();
    let Some(&crate::model::Op::Add {
        a,
        output,
        a_zero_point,
        ..
    }) = model.ops.iter().find(|op| op.name() == "add")
    else {
        panic!("no add op in {:?}", model.ops);
    };
    model.outputs.extend([a, output]);
    let model = crate::model::ValidModel::new(model).unwrap();
    let input = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../models/digits/heldout_input.bin"
    ))
    .unwrap();
    let out = crate::model::run_cpu(&model, &input).unwrap();
    let (h, sum) = (&out.outputs[2], &out.outputs[3]);
    // With the output scale equal to the inputs', h + h is 2·(h − zp) + zp, saturated.
    let expected: Vec<u8> = h
        .iter()
        .map(|&x| (2 * (x as i8 as i32 - a_zero_point) + a_zero_point).clamp(-128, 127) as i8 as u8)
        .collect();
    assert_eq!(sum, &expected);
    assert!(
        h.iter().any(|&x| x as i8 as i32 != a_zero_point),
        "h is not all zero"
    );
    // Three more scale conversions (a, b, output), all exact powers of two here.
    assert_eq!(imported.scales.len(), 5);
    let add_scales = &imported.scales[1..4];
    assert!(
        add_scales.iter().all(|s| s.node == "sum_q"),
        "{add_scales:?}"
    );
    assert!(
        add_scales.iter().all(|s| s.fixed.relative_error == 0.0),
        "{add_scales:?}"
    );
}

#[test]
fn add_of_a_constant_is_refused() {
    let bytes = edited(|m| {
        let g = m.graph.as_mut().unwrap();
        let at = g.node.iter().position(|n| n.name() == "fc2").unwrap();
        g.node.insert(
            at,
            NodeProto {
                name: Some("plus_weights".into()),
                op_type: Some("Add".into()),
                input: vec![
                    "relu1_DequantizeLinear_Output".into(),
                    "fc2.weight_DequantizeLinear_Output".into(),
                ],
                output: vec!["x".into()],
                ..Default::default()
            },
        );
    });
    let err = import(&bytes).unwrap_err().to_string();
    assert!(
        err.contains("`plus_weights`") && err.contains("constants"),
        "{err}"
    );
}

fn cnn_edited(form: &str, edit: impl FnOnce(&mut ModelProto)) -> Vec<u8> {
    let path = format!(
        "{}/../models/digits_cnn/digits_cnn_{form}.onnx",
        env!("CARGO_MANIFEST_DIR")
    );
    let mut model = ModelProto::decode(std::fs::read(path).unwrap().as_slice()).unwrap();
    edit(&mut model);
    model.encode_to_vec()
}

fn node_named<'m>(m: &'m mut ModelProto, name: &str) -> &'m mut NodeProto {
    let nodes = m.graph.as_mut().unwrap().node.iter_mut();
    nodes.into_iter().find(|n| n.name() == name).unwrap()
}

fn int_attr(name: &str, i: i64) -> super::proto::AttributeProto {
    super::proto::AttributeProto {
        name: Some(name.into()),
        i: Some(i),
        r#type: Some(2),
        ..Default::default()
    }
}

fn ints_attr(name: &str, ints: &[i64]) -> super::proto::AttributeProto {
    super::proto::AttributeProto {
        name: Some(name.into()),
        ints: ints.to_vec(),
        r#type: Some(7),
        ..Default::default()
    }
}

#[test]
fn convolutions_the_format_cannot_run_are_refused_naming_the_node() {
    for (form, conv) in [("qdq", "conv2"), ("qop", "conv2_quant")] {
        let cases: [(super::proto::AttributeProto, &str); 3] = [
            (int_attr("group", 2), "grouped"),
            (ints_attr("dilations", &[2, 2]), "dilations"),
            (ints_attr("strides", &[1, 1, 1]), "2-D strides"),
        ];
        for (attr, says) in cases {
            let bytes = cnn_edited(form, |m| node_named(m, conv).attribute.push(attr));
            let err = import(&bytes).unwrap_err();
            assert!(
                matches!(&err, OnnxError::Unsupported { detail, .. } if detail.contains(says)),
                "{form}: {err}"
            );
        }
    }
}

#[test]
fn a_padded_pool_and_an_average_pool_on_int8_are_refused() {
    let bytes = cnn_edited("qdq", |m| {
        node_named(m, "pool1")
            .attribute
            .push(ints_attr("pads", &[1, 1, 1, 1]));
    });
    let err = import(&bytes).unwrap_err();
    assert!(err.to_string().contains("padding"), "{err}");
    let bytes = cnn_edited("qop", |m| {
        node_named(m, "pool1").op_type = Some("AveragePool".into());
    });
    let err = import(&bytes).unwrap_err();
    assert!(matches!(err, OnnxError::UnsupportedOp { .. }), "{err}");
}
