// One Airflow client per language: the TypeScript one lives in tasks (the lake's lander posts asset
// events with it too); the API's routes keep importing it from here.
export { AirflowClient, type AirflowConnection, replyDetail, type TriggeredRun } from '@driftwood/tasks';
