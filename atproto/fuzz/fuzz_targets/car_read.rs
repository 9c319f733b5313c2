//! Feeds arbitrary bytes to the CAR reader under tight limits, then every block it accepts to
//! the MST node and commit decoders. Nothing may panic; every accepted block must hash to its
//! CID (the reader promises that before anything downstream trusts a block's name).

#![no_main]

use std::sync::OnceLock;

use aurora_atproto::car::{read_car, CarLimits};
use aurora_atproto::commit::Commit;
use aurora_atproto::mst::decode_node;
use libfuzzer_sys::fuzz_target;
use sha2::{Digest, Sha256};

/// One runtime for the whole run; a slice reader never waits, so it is only a harness.
fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap_or_else(|error| panic!("cannot start a runtime: {error}"))
    })
}

const LIMITS: CarLimits = CarLimits { max_block_size: 64 * 1024, max_total_size: 1024 * 1024, max_blocks: 4096 };

fuzz_target!(|bytes: &[u8]| {
    let Ok((_root, blocks)) = runtime().block_on(read_car(bytes, LIMITS)) else {
        return;
    };
    for (cid, block) in &blocks {
        assert_eq!(cid.hash().digest(), Sha256::digest(block).as_slice(), "an accepted block does not match its CID");
        let _ = decode_node(block);
        let _ = Commit::from_bytes(block);
    }
});
