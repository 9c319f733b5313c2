pub mod auroralocus;
