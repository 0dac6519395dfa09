//! The broker's view of a session's streams: which exist, who finished, and
//! how much DATA each side may still send on each (its credit). Pure state,
//! no I/O; the relay calls it under a short lock for every stream frame.

use std::collections::HashMap;

use crate::session::Side;

/// Largest credit a stream may accumulate (a receiver granting more than
/// this is broken).
pub(crate) const MAX_CREDIT: u64 = u32::MAX as u64;

/// What to do with a stream frame that broke no rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Route {
    /// Forward it to the other side.
    Forward,
    /// Drop it: the stream is already closed (the sides may cross).
    Drop,
    /// OPEN over the stream limit: answer RESET (busy), do not forward.
    Refuse,
}

/// A broken rule; the text becomes the CLOSE reason.
pub(crate) type Violation = String;

#[derive(Debug)]
struct Stream {
    /// Bytes each side may still send (index: [`Side::idx`]).
    credit: [u64; 2],
    fin: [bool; 2],
    open_ok: bool,
}

/// The streams of one session.
#[derive(Debug)]
pub(crate) struct Streams {
    live: HashMap<u32, Stream>,
    /// Highest id the client opened (ids only increase).
    highest: u32,
    window: u64,
    max_streams: usize,
}

impl Streams {
    pub(crate) fn new(window: u32, max_streams: usize) -> Self {
        Self {
            live: HashMap::new(),
            highest: 0,
            window: u64::from(window),
            max_streams,
        }
    }

    /// The negotiated window, once both HELLOs are known (before any OPEN).
    pub(crate) fn set_window(&mut self, window: u32) {
        self.window = u64::from(window);
    }

    /// Streams open now.
    pub(crate) fn open_count(&self) -> usize {
        self.live.len()
    }

    /// What `from` may still send on live stream `id`.
    pub(crate) fn credit(&self, from: Side, id: u32) -> Option<u64> {
        self.live.get(&id).map(|s| s.credit[from.idx()])
    }

    /// `from` already sent FIN on live stream `id`.
    pub(crate) fn finished(&self, from: Side, id: u32) -> bool {
        self.live.get(&id).is_some_and(|s| s.fin[from.idx()])
    }

    /// OPEN of `id` from `from`.
    pub(crate) fn open(&mut self, from: Side, id: u32) -> Result<Route, Violation> {
        if from == Side::Server {
            return Err("only the client side opens streams".into());
        }
        if id % 2 == 0 || id <= self.highest {
            return Err(format!(
                "OPEN of stream {id}: client stream ids are odd and increasing"
            ));
        }
        self.highest = id;
        if self.live.len() >= self.max_streams {
            return Ok(Route::Refuse);
        }
        self.live.insert(
            id,
            Stream {
                credit: [self.window, self.window],
                fin: [false, false],
                open_ok: false,
            },
        );
        Ok(Route::Forward)
    }

    /// OPEN_OK of `id` from `from`.
    pub(crate) fn open_ok(&mut self, from: Side, id: u32) -> Result<Route, Violation> {
        if from == Side::Client {
            return Err("OPEN_OK from the client side".into());
        }
        self.with(id, |s| {
            if s.open_ok {
                return Err(format!("second OPEN_OK on stream {id}"));
            }
            s.open_ok = true;
            Ok(false)
        })
    }

    /// DATA of `len` bytes on `id` from `from`: spends its credit.
    pub(crate) fn data(&mut self, from: Side, id: u32, len: u64) -> Result<Route, Violation> {
        let me = from.idx();
        self.with(id, |s| {
            if s.fin[me] {
                return Err(format!("DATA after FIN on stream {id}"));
            }
            if len > s.credit[me] {
                return Err(format!(
                    "DATA beyond the window on stream {id} ({len} bytes, {} allowed)",
                    s.credit[me]
                ));
            }
            s.credit[me] -= len;
            Ok(false)
        })
    }

    /// WINDOW of `increment` on `id` from `from`: credit for the other side.
    pub(crate) fn window(
        &mut self,
        from: Side,
        id: u32,
        increment: u32,
    ) -> Result<Route, Violation> {
        let peer = from.peer().idx();
        self.with(id, |s| {
            s.credit[peer] += u64::from(increment);
            if s.credit[peer] > MAX_CREDIT {
                return Err(format!("window overflow on stream {id}"));
            }
            Ok(false)
        })
    }

    /// FIN on `id` from `from`; the stream closes when both sides sent FIN.
    pub(crate) fn fin(&mut self, from: Side, id: u32) -> Result<Route, Violation> {
        let me = from.idx();
        self.with(id, |s| {
            if s.fin[me] {
                return Err(format!("second FIN on stream {id}"));
            }
            s.fin[me] = true;
            Ok(s.fin[0] && s.fin[1])
        })
    }

    /// RESET of `id` (either side): the stream closes.
    pub(crate) fn reset(&mut self, id: u32) -> Result<Route, Violation> {
        self.with(id, |_| Ok(true))
    }

    /// Apply `f` to live stream `id`; `f` says whether it is now closed.
    /// Frames for streams closed already are dropped; frames for streams
    /// never opened are a violation.
    fn with(
        &mut self,
        id: u32,
        f: impl FnOnce(&mut Stream) -> Result<bool, Violation>,
    ) -> Result<Route, Violation> {
        match self.live.get_mut(&id) {
            Some(s) => {
                if f(s)? {
                    self.live.remove(&id);
                }
                Ok(Route::Forward)
            }
            None if id % 2 == 1 && id <= self.highest => Ok(Route::Drop),
            None => Err(format!("frame for stream {id}, which does not exist")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Side::{Client, Server};

    #[test]
    fn opens_are_client_odd_and_increasing() {
        let mut s = Streams::new(1024, 8);
        assert_eq!(s.open(Client, 1), Ok(Route::Forward));
        assert!(s.open(Client, 1).unwrap_err().contains("increasing"));
        assert!(s.open(Client, 4).unwrap_err().contains("odd"));
        assert!(s.open(Server, 7).unwrap_err().contains("only the client"));
        assert_eq!(s.open(Client, 5), Ok(Route::Forward));
        assert_eq!(s.open_count(), 2);
    }

    #[test]
    fn the_limit_refuses_and_later_frames_are_dropped() {
        let mut s = Streams::new(1024, 1);
        assert_eq!(s.open(Client, 1), Ok(Route::Forward));
        assert_eq!(s.open(Client, 3), Ok(Route::Refuse));
        assert_eq!(s.data(Client, 3, 10), Ok(Route::Drop));
        assert_eq!(s.reset(1), Ok(Route::Forward));
        assert_eq!(s.open(Client, 5), Ok(Route::Forward));
    }

    #[test]
    fn credit_is_spent_and_granted_per_direction() {
        let mut s = Streams::new(1000, 8);
        s.open(Client, 1).unwrap();
        assert_eq!(s.open_ok(Server, 1), Ok(Route::Forward));
        assert!(s.open_ok(Server, 1).unwrap_err().contains("second"));
        assert_eq!(s.data(Client, 1, 600), Ok(Route::Forward));
        assert!(
            s.data(Client, 1, 401)
                .unwrap_err()
                .contains("beyond the window")
        );
        // The server's own credit is untouched.
        assert_eq!(s.data(Server, 1, 1000), Ok(Route::Forward));
        // The server grants 500 to the client.
        assert_eq!(s.window(Server, 1, 500), Ok(Route::Forward));
        assert_eq!(s.data(Client, 1, 900), Ok(Route::Forward));
        assert_eq!(s.window(Server, 1, u32::MAX), Ok(Route::Forward));
        assert!(s.window(Server, 1, 1).unwrap_err().contains("overflow"));
    }

    #[test]
    fn fin_both_ways_closes() {
        let mut s = Streams::new(1000, 8);
        s.open(Client, 1).unwrap();
        assert_eq!(s.fin(Client, 1), Ok(Route::Forward));
        assert!(s.data(Client, 1, 1).unwrap_err().contains("after FIN"));
        assert!(s.fin(Client, 1).unwrap_err().contains("second FIN"));
        assert_eq!(s.data(Server, 1, 5), Ok(Route::Forward));
        assert_eq!(s.fin(Server, 1), Ok(Route::Forward));
        assert_eq!(s.open_count(), 0);
        // Late frames for the closed stream are dropped, unknown ones refused.
        assert_eq!(s.window(Client, 1, 5), Ok(Route::Drop));
        assert!(s.fin(Client, 9).unwrap_err().contains("does not exist"));
        assert!(s.data(Client, 2, 1).unwrap_err().contains("does not exist"));
    }
}
