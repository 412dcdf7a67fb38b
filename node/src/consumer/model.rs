//! A model and a batch of samples as a consumer posts them (`stp job post --model`,
//! `stp batch post --model`, the Python SDK): read and checked here, so a wrong file, a
//! sample size that does not fit the model's input or an unsupported model fails before
//! anything is paid.

use std::path::Path;

use eyre::WrapErr;
use stp_sdk::batch::{Batch, SplitBy, split_model};
use stp_sdk::kernels::KernelId;
use stp_sdk::model::{ValidModel, job};

use super::Order;

/// A model file and the samples to run it on.
#[derive(Debug, Clone)]
pub struct ModelWork {
    /// The model file's bytes (a blob providers fetch once, by its hash).
    pub file: Vec<u8>,
    /// The model, validated.
    pub model: ValidModel,
    /// The samples, int8, back to back.
    pub samples: Vec<u8>,
}

impl ModelWork {
    /// Checks `file` as a model and `samples` as a whole batch of its input.
    pub fn new(file: Vec<u8>, samples: Vec<u8>) -> eyre::Result<Self> {
        let model = ValidModel::decode(&file).wrap_err("the model file is not a valid model")?;
        model
            .batch_of(&samples)
            .wrap_err("the samples do not fit the model's input")?;
        Ok(Self {
            file,
            model,
            samples,
        })
    }

    /// Reads `--model` and `--input`.
    pub fn read(model: &Path, input: &Path) -> eyre::Result<Self> {
        let file = std::fs::read(model)
            .wrap_err_with(|| format!("reading --model {}", model.display()))?;
        let samples = std::fs::read(input)
            .wrap_err_with(|| format!("reading --input {}", input.display()))?;
        Self::new(file, samples)
            .wrap_err_with(|| format!("--model {} --input {}", model.display(), input.display()))
    }

    /// The model and samples of a model job's input (`stp_sdk::model::job`, as the Python
    /// SDK's `Model.job` lays it out), checked; `None` for any other input.
    pub fn from_job_input(input: &[u8]) -> eyre::Result<Option<Self>> {
        if !job::is_model_job(input) {
            return Ok(None);
        }
        let (file, samples) = job::split(input)
            .ok_or_else(|| eyre::eyre!("a model job's header announces more bytes than follow"))?;
        Self::new(file.to_vec(), samples.to_vec()).map(Some)
    }

    /// The kernel id of jobs that run this model.
    pub fn kernel(&self) -> KernelId {
        job::kernel_id(&self.model.id())
    }

    /// `order` made a job of this model over every sample: the resolved input is the model
    /// job's, the posted one a parts input naming the model file by hash (serve
    /// [`ModelWork::file`] as a blob first).
    pub fn order(&self, order: Order) -> Order {
        Order {
            kernel: self.kernel(),
            input: job::encode(&self.file, &self.samples),
            served: Some(job::parts_input(&self.file, &self.samples)),
            ..order
        }
    }

    /// The batch of this model over the samples, split by samples.
    pub fn split(&self, by: SplitBy) -> eyre::Result<Batch> {
        Ok(split_model(&self.file, &self.samples, by)?)
    }
}
