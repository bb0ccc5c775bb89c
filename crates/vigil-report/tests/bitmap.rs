//! Decoding the PNG documents and telling the strip's inks apart.

/// A decoded RGB bitmap and the resolution its `pHYs` chunk states.
pub struct Bitmap {
    pub width: u32,
    pub height: u32,
    pub rgb: Vec<u8>,
    /// Dots per inch from `pHYs` (pixels per metre × 0.0254), when present.
    pub dpi: Option<f64>,
}

impl Bitmap {
    pub fn decode(bytes: &[u8]) -> Bitmap {
        let decoder = png::Decoder::new_with_limits(
            std::io::Cursor::new(bytes),
            png::Limits { bytes: 1 << 31 },
        );
        let mut reader = decoder.read_info().expect("a PNG");
        let dpi = reader.info().pixel_dims.map(|d| {
            assert_eq!(d.unit, png::Unit::Meter);
            assert_eq!(d.xppu, d.yppu);
            f64::from(d.xppu) * 0.0254
        });
        let mut rgb = vec![0; reader.output_buffer_size().expect("a size")];
        let info = reader.next_frame(&mut rgb).expect("a frame");
        assert_eq!(info.color_type, png::ColorType::Rgb);
        assert_eq!(info.bit_depth, png::BitDepth::Eight);
        rgb.truncate(info.buffer_size());
        Bitmap {
            width: info.width,
            height: info.height,
            rgb,
            dpi,
        }
    }

    pub fn at(&self, x: i32, y: i32) -> [u8; 3] {
        let i = (y as usize * self.width as usize + x as usize) * 3;
        [self.rgb[i], self.rgb[i + 1], self.rgb[i + 2]]
    }

    /// The trace's ink (black), not the grid's reds, the onset's blue or the grey of gaps.
    pub fn is_trace(&self, x: i32, y: i32) -> bool {
        let [r, g, b] = self.at(x, y);
        r < 80 && g < 80 && b < 80
    }

    /// The major grid line's colour: a darker red than the minor lines.
    pub fn is_major(&self, x: i32, y: i32) -> bool {
        let [r, g, b] = self.at(x, y);
        r > 180 && g < 150 && b < 150
    }
}
