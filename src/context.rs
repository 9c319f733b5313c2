//! The one `AppContext`, built in one place from the configuration.

use std::sync::Arc;

use sea_orm::DatabaseConnection;

use crate::config::Config;

/// Everything a handler needs, shared by all requests.
pub struct AppContext {
    pub config: Config,
    pub db: DatabaseConnection,
}

impl AppContext {
    /// Connects to the database (applying migrations) and assembles the context.
    pub async fn build(config: Config) -> Result<Arc<AppContext>, BuildError> {
        std::fs::create_dir_all(&config.data_dir).map_err(|e| BuildError::DataDir(config.data_dir.clone(), e))?;
        let db = crate::db::connect(&config.database_url).await.map_err(BuildError::Database)?;
        Ok(Arc::new(AppContext { config, db }))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("cannot create the data directory {0}: {1}")]
    DataDir(std::path::PathBuf, std::io::Error),
    #[error("database: {0}")]
    Database(sea_orm::DbErr),
}
