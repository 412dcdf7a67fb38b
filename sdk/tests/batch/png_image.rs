//! The assembled mandelbrot image written as PNG decodes to the same pixels.

use std::io::Cursor;

use stp_sdk::batch::{SplitBy, encode_png, split};
use stp_sdk::kernels::cpu_reference;
use stp_sdk::kernels::mandelbrot::Tile;

use super::id;

#[test]
fn batch_png_round_trip_of_an_assembled_image() {
    let kernel = id("mandelbrot-fixed");
    let whole = Tile::centered(37, 23, -0.6, 0.0, 2.8, 64).encode().unwrap();
    let batch = split(&kernel, &whole, SplitBy::Tiles { cols: 4, rows: 3 }).unwrap();
    let outputs: Vec<Vec<u8>> = batch
        .chunks
        .iter()
        .map(|c| cpu_reference(&kernel, &c.input).unwrap())
        .collect();
    let rgba = batch.assembly.assemble(&outputs).unwrap();
    let (width, height) = batch.assembly.image().unwrap();
    let file = encode_png(width, height, &rgba).unwrap();
    assert!(file.starts_with(b"\x89PNG\r\n\x1a\n"));

    let mut reader = png::Decoder::new(Cursor::new(file)).read_info().unwrap();
    let mut pixels = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut pixels).unwrap();
    assert_eq!((info.width, info.height), (37, 23));
    assert_eq!(info.color_type, png::ColorType::Rgba);
    assert_eq!(info.bit_depth, png::BitDepth::Eight);
    pixels.truncate(info.buffer_size());
    assert_eq!(pixels, cpu_reference(&kernel, &whole).unwrap());
    // Not a blank picture: the set (black) and escaping points (coloured) are both there.
    assert!(pixels.chunks_exact(4).any(|p| p == [0, 0, 0, 255]));
    assert!(pixels.chunks_exact(4).any(|p| p != [0, 0, 0, 255]));
}
