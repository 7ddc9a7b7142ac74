pub mod rotation;
pub mod sealing;

pub use sealing::{EncryptionKey, Keyring, OpenError, Sealed, generate_key_base64, hint};
