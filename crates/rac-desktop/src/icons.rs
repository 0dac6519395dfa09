//! The two tray icons, drawn in code: a grey ring (idle) and a green disc
//! with a white dot (a session is active). RGBA, [`SIZE`] square.

/// Width and height in pixels.
pub const SIZE: u32 = 32;

/// Idle: no session.
pub fn idle() -> Vec<u8> {
    draw(|d| {
        if (10.0..=14.0).contains(&d) {
            [0x80, 0x80, 0x80, 0xff]
        } else {
            [0, 0, 0, 0]
        }
    })
}

/// Active: at least one session.
pub fn active() -> Vec<u8> {
    draw(|d| {
        if d <= 5.0 {
            [0xff, 0xff, 0xff, 0xff]
        } else if d <= 14.0 {
            [0x2e, 0xa0, 0x43, 0xff]
        } else {
            [0, 0, 0, 0]
        }
    })
}

/// Paint each pixel by its distance from the centre.
fn draw(paint: impl Fn(f32) -> [u8; 4]) -> Vec<u8> {
    let c = (SIZE as f32 - 1.0) / 2.0;
    let mut out = Vec::with_capacity((SIZE * SIZE * 4) as usize);
    for y in 0..SIZE {
        for x in 0..SIZE {
            let (dx, dy) = (x as f32 - c, y as f32 - c);
            out.extend_from_slice(&paint((dx * dx + dy * dy).sqrt()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn icons_differ_and_have_the_right_size() {
        let (i, a) = (idle(), active());
        assert_eq!(i.len(), (SIZE * SIZE * 4) as usize);
        assert_eq!(a.len(), i.len());
        assert_ne!(i, a);
        // Centre pixel: transparent when idle, white when active.
        let mid = ((SIZE / 2) * SIZE + SIZE / 2) as usize * 4;
        assert_eq!(i[mid + 3], 0);
        assert_eq!(&a[mid..mid + 4], &[0xff; 4]);
    }
}
