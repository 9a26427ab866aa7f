//! The `visual-agent` Lambda, invoked by the state machine.

use campaign_shared::domain::Agent;
use campaign_shared::usecases::TaskFunction;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    campaign_tasks::main(TaskFunction::Agent(Agent::Visual)).await
}
