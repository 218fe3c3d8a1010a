//! The `palaver` binary: command line, configuration, wiring of the layers, shutdown.
fn main() -> anyhow::Result<()> {
    Ok(())
}
