//! The default embedding model: hashed token features, projected to 384
//! dimensions and normalised. It needs no download and gives the same
//! vector for the same text on every machine, so the stack runs anywhere
//! and its tests can assert on search results.
//!
//! It is not a language model: two texts are close when they share words
//! (and word pairs), leaving out the commonest words and a plural's `s`,
//! which is enough to show retrieval working and failing.

/// The width of every vector, as the small sentence-embedding models have.
pub const DIMENSIONS: usize = 384;

/// The model's name, as the OpenAI-compatible API reports it.
pub const MODEL_NAME: &str = "buttress-hashed-384";

/// Hashed token features: each lower-cased word and each pair of
/// neighbouring words adds ±1 to one of [`DIMENSIONS`] buckets (the bucket
/// and the sign come from a 64-bit FNV-1a hash), and the sum is scaled to
/// length 1.
#[derive(Debug, Clone, Copy, Default)]
pub struct HashedModel;

impl HashedModel {
    /// The vector of `text`: length 1, or all zeros for a text with no
    /// word in it.
    pub fn embed(&self, text: &str) -> Vec<f32> {
        let mut vector = vec![0f32; DIMENSIONS];
        let mut previous: Option<u64> = None;
        for word in words(text).filter(|w| !STOP_WORDS.contains(&w.as_str())) {
            let word = stem(&word);
            let h = fnv1a(word.as_bytes(), FNV_OFFSET);
            add(&mut vector, h, 1.0);
            if let Some(p) = previous {
                // A word pair weighs half a word: it sharpens, not dominates.
                add(&mut vector, p.rotate_left(17) ^ h, 0.5);
            }
            previous = Some(h);
        }
        normalise(&mut vector);
        vector
    }

    /// How many tokens `text` counts as, for the API's `usage` field.
    pub fn tokens(&self, text: &str) -> usize {
        words(text).count()
    }
}

/// Words too common to say what a text is about.
const STOP_WORDS: &[&str] = &[
    "a", "an", "and", "are", "as", "at", "be", "by", "can", "do", "does", "for", "from", "how",
    "in", "is", "it", "its", "of", "on", "or", "that", "the", "this", "to", "what", "when",
    "which", "why", "with",
];

/// A crude stem: a plural's final `s` off (not from `-ss` or short words).
fn stem(word: &str) -> &str {
    match word.strip_suffix('s') {
        Some(base) if base.len() > 3 && !base.ends_with('s') => base,
        _ => word,
    }
}

/// The lower-cased alphanumeric words of `text`.
pub fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
}

/// The cosine similarity of two vectors of length 1 (their dot product).
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

fn fnv1a(bytes: &[u8], mut hash: u64) -> u64 {
    for &b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(FNV_PRIME);
    }
    hash
}

fn add(vector: &mut [f32], hash: u64, weight: f32) {
    let bucket = (hash % DIMENSIONS as u64) as usize;
    let sign = if hash >> 63 == 0 { 1.0 } else { -1.0 };
    vector[bucket] += sign * weight;
}

fn normalise(vector: &mut [f32]) {
    let norm = vector.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        for x in vector.iter_mut() {
            *x /= norm;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_text_same_vector_of_length_one() {
        let a = HashedModel.embed("How does a circuit breaker probe?");
        assert_eq!(a, HashedModel.embed("how does a CIRCUIT breaker probe"));
        assert_eq!(a.len(), DIMENSIONS);
        assert!((cosine(&a, &a) - 1.0).abs() < 1e-5);
    }

    #[test]
    fn shared_words_are_closer() {
        let q = HashedModel.embed("circuit breaker half-open probe");
        let near = HashedModel.embed("A circuit breaker lets one probe through when half-open.");
        let far = HashedModel.embed("Checkpoints are written atomically with fsync.");
        assert!(cosine(&q, &near) > cosine(&q, &far) + 0.2);
    }

    #[test]
    fn common_words_and_plurals_do_not_count() {
        assert_eq!(
            HashedModel.embed("Why write the checkpoints?"),
            HashedModel.embed("write checkpoint")
        );
        assert_eq!(stem("class"), "class");
        assert_eq!(stem("gas"), "gas");
    }

    #[test]
    fn no_words_is_zero() {
        assert!(HashedModel.embed(" ,.!").iter().all(|x| *x == 0.0));
        assert_eq!(HashedModel.tokens("one two, three"), 3);
    }
}
