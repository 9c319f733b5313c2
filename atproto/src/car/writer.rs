//! Writing CAR files as a stream.

use bytes::Bytes;
use cid::Cid;
use tokio::io::AsyncWrite;

use super::CarError;

/// Writes a CAR v1 with one root (or none): the header at once, then each block as it is given, so a
/// repository export never sits in memory whole.
pub struct CarWriter<W> {
    inner: iroh_car::CarWriter<W>,
    written: u64,
}

fn write_error(error: iroh_car::Error) -> CarError {
    match error {
        iroh_car::Error::Io(error) => CarError::Io(error),
        other => CarError::Malformed(other.to_string()),
    }
}

impl<W: AsyncWrite + Send + Unpin> CarWriter<W> {
    /// Starts a CAR whose root is `root` (for a repository, the commit) and writes the header.
    pub async fn new(writer: W, root: Cid) -> Result<CarWriter<W>, CarError> {
        Self::with_roots(writer, vec![root]).await
    }

    /// Starts a CAR with an empty root list (loose blocks, as `sync.getBlocks` answers).
    pub async fn without_root(writer: W) -> Result<CarWriter<W>, CarError> {
        Self::with_roots(writer, Vec::new()).await
    }

    async fn with_roots(writer: W, roots: Vec<Cid>) -> Result<CarWriter<W>, CarError> {
        let mut inner = iroh_car::CarWriter::new(iroh_car::CarHeader::new_v1(roots), writer);
        // Written now rather than with the first block, so that a CAR without blocks is valid.
        let written = inner.write_header().await.map_err(write_error)? as u64;
        Ok(CarWriter { inner, written })
    }

    /// Appends a block.
    pub async fn write_block(&mut self, cid: Cid, bytes: &[u8]) -> Result<(), CarError> {
        self.written += self.inner.write(cid, bytes).await.map_err(write_error)? as u64;
        Ok(())
    }

    /// Bytes written so far.
    pub fn bytes_written(&self) -> u64 {
        self.written
    }

    /// Flushes and returns the writer.
    pub async fn finish(self) -> Result<W, CarError> {
        self.inner.finish().await.map_err(write_error)
    }
}

/// Writes a CAR v1 with one root to a blocking writer, for exports that read their blocks on a
/// blocking thread (where a future per block would only add work). Same bytes as [`CarWriter`].
pub struct BlockingCarWriter<W> {
    writer: W,
    cid: Vec<u8>,
    written: u64,
}

impl<W: std::io::Write> BlockingCarWriter<W> {
    /// Starts a CAR whose root is `root` and writes the header.
    pub fn new(writer: W, root: Cid) -> Result<BlockingCarWriter<W>, CarError> {
        let header = iroh_car::CarHeader::new_v1(vec![root]).encode().map_err(write_error)?;
        let mut car = BlockingCarWriter { writer, cid: Vec::with_capacity(40), written: 0 };
        car.frame(&header, &[])?;
        Ok(car)
    }

    /// Appends a block.
    pub fn write_block(&mut self, cid: &Cid, bytes: &[u8]) -> Result<(), CarError> {
        let mut encoded = std::mem::take(&mut self.cid);
        encoded.clear();
        cid.write_bytes(&mut encoded).map_err(|e| CarError::Malformed(e.to_string()))?;
        let result = self.frame(&encoded, bytes);
        self.cid = encoded;
        result
    }

    /// Writes one block whose CID is already in its binary form (see
    /// [`crate::cids::atproto_bytes`]).
    pub fn write_encoded(&mut self, cid: &[u8], bytes: &[u8]) -> Result<(), CarError> {
        self.frame(cid, bytes)
    }

    /// One length-prefixed section: `head` then `body`.
    fn frame(&mut self, head: &[u8], body: &[u8]) -> Result<(), CarError> {
        let mut length = unsigned_varint::encode::usize_buffer();
        let length = unsigned_varint::encode::usize(head.len() + body.len(), &mut length);
        self.writer.write_all(length)?;
        self.writer.write_all(head)?;
        self.writer.write_all(body)?;
        self.written += (length.len() + head.len() + body.len()) as u64;
        Ok(())
    }

    /// Bytes written so far.
    pub fn bytes_written(&self) -> u64 {
        self.written
    }

    /// The writer, e.g. a buffer to drain between blocks.
    pub fn get_ref(&self) -> &W {
        &self.writer
    }

    /// The writer, mutably.
    pub fn get_mut(&mut self) -> &mut W {
        &mut self.writer
    }

    /// Flushes and returns the writer.
    pub fn finish(mut self) -> Result<W, CarError> {
        self.writer.flush()?;
        Ok(self.writer)
    }
}

/// Writes a CAR of `blocks` under `root`: a diff, a proof, a commit's slice.
pub async fn write_car<W: AsyncWrite + Send + Unpin>(
    writer: W,
    root: Cid,
    blocks: impl IntoIterator<Item = (Cid, Bytes)>,
) -> Result<W, CarError> {
    let mut car = CarWriter::new(writer, root).await?;
    for (cid, bytes) in blocks {
        car.write_block(cid, &bytes).await?;
    }
    car.finish().await
}

/// A CAR of `blocks` under `root`, in memory (e.g. the `blocks` field of a firehose event).
pub async fn car_bytes(root: Cid, blocks: impl IntoIterator<Item = (Cid, Bytes)>) -> Result<Vec<u8>, CarError> {
    write_car(Vec::new(), root, blocks).await
}

/// A CAR of `blocks` with an empty root list, as `com.atproto.sync.getBlocks` answers: the
/// blocks are loose, not a DAG under one root.
pub async fn car_bytes_without_root(blocks: impl IntoIterator<Item = (Cid, Bytes)>) -> Result<Vec<u8>, CarError> {
    let mut car = CarWriter::without_root(Vec::new()).await?;
    for (cid, bytes) in blocks {
        car.write_block(cid, &bytes).await?;
    }
    car.finish().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_blocking_writer_writes_the_same_bytes_as_the_streaming_one() {
        let blocks: Vec<(Cid, Bytes)> = (0..300u32)
            .map(|i| {
                // Sizes either side of the one-byte varint's limit.
                let bytes = Bytes::from(vec![i as u8; i as usize]);
                (crate::cids::for_raw(&bytes), bytes)
            })
            .collect();
        let root = blocks[7].0;
        let streamed = car_bytes(root, blocks.clone()).await.expect("streamed");
        let mut blocking = BlockingCarWriter::new(Vec::new(), root).expect("header");
        for (cid, bytes) in &blocks {
            blocking.write_block(cid, bytes).expect("block");
        }
        assert_eq!(blocking.bytes_written(), streamed.len() as u64);
        assert_eq!(blocking.finish().expect("finish"), streamed);
    }
}
