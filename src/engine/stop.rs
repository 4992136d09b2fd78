//! Stop strings across token boundaries. Text is released only when no
//! stop string could still begin inside it, so a streaming client never
//! sees the start of a stop string that later completes.

pub struct StopMatcher {
    stops: Vec<String>,
    /// Text decoded but not yet released.
    pending: String,
}

pub enum StopOutcome {
    /// Text safe to release now.
    Continue(String),
    /// A stop string matched: the text before it, and which one.
    Stopped { text: String, stop: String },
}

impl StopMatcher {
    pub fn new(stops: &[String]) -> Self {
        StopMatcher {
            stops: stops.iter().filter(|s| !s.is_empty()).cloned().collect(),
            pending: String::new(),
        }
    }

    pub fn push(&mut self, text: &str) -> StopOutcome {
        self.pending.push_str(text);
        if self.stops.is_empty() {
            return StopOutcome::Continue(std::mem::take(&mut self.pending));
        }
        // The earliest complete match wins.
        let hit = self
            .stops
            .iter()
            .filter_map(|s| self.pending.find(s.as_str()).map(|at| (at, s)))
            .min_by_key(|(at, _)| *at);
        if let Some((at, stop)) = hit {
            let stop = stop.clone();
            let mut text = std::mem::take(&mut self.pending);
            text.truncate(at);
            return StopOutcome::Stopped { text, stop };
        }
        // Hold back the longest suffix that is a prefix of some stop string.
        let keep = self
            .stops
            .iter()
            .map(|s| longest_suffix_prefix(&self.pending, s))
            .max()
            .unwrap_or(0);
        let cut = self.pending.len() - keep;
        let released = self.pending[..cut].to_owned();
        self.pending.drain(..cut);
        StopOutcome::Continue(released)
    }

    /// What is still held back, at the end of generation.
    pub fn finish(&mut self) -> String {
        std::mem::take(&mut self.pending)
    }
}

/// Length of the longest suffix of `text` that is a proper prefix of `stop`,
/// on character boundaries.
fn longest_suffix_prefix(text: &str, stop: &str) -> usize {
    let max = text.len().min(stop.len().saturating_sub(1));
    (1..=max)
        .rev()
        .find(|&n| {
            let start = text.len() - n;
            text.is_char_boundary(start) && stop.is_char_boundary(n) && text[start..] == stop[..n]
        })
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(stops: &[&str], pieces: &[&str]) -> (String, Option<String>) {
        let stops: Vec<String> = stops.iter().map(|s| s.to_string()).collect();
        let mut m = StopMatcher::new(&stops);
        let mut out = String::new();
        for p in pieces {
            match m.push(p) {
                StopOutcome::Continue(t) => out.push_str(&t),
                StopOutcome::Stopped { text, stop } => {
                    out.push_str(&text);
                    return (out, Some(stop));
                }
            }
        }
        out.push_str(&m.finish());
        (out, None)
    }

    #[test]
    fn matches_across_token_boundaries() {
        assert_eq!(
            run(&["END"], &["abc E", "N", "D tail"]),
            ("abc ".into(), Some("END".into()))
        );
    }

    #[test]
    fn releases_held_text_when_the_match_fails() {
        assert_eq!(run(&["END"], &["abc E", "x"]), ("abc Ex".into(), None));
    }

    #[test]
    fn earliest_of_several_stops_wins() {
        assert_eq!(
            run(&["world", "lo"], &["hello world"]),
            ("hel".into(), Some("lo".into()))
        );
    }

    #[test]
    fn never_releases_a_prefix_of_a_stop() {
        let stops = vec!["\n\nUser:".to_string()];
        let mut m = StopMatcher::new(&stops);
        match m.push("answer\n\nUs") {
            StopOutcome::Continue(t) => assert_eq!(t, "answer"),
            StopOutcome::Stopped { .. } => panic!("no full match yet"),
        }
    }

    #[test]
    fn multibyte_text_is_cut_on_char_boundaries() {
        assert_eq!(run(&["éé"], &["aé", "b"]), ("aéb".into(), None));
    }
}
