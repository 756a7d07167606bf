// firebase-admin's task queue against tasksd (CLOUD_TASKS_EMULATOR_HOST names its HTTP port):
// one task without options, one with an id, schedule, deadline and headers, one enqueued and deleted.
const {initializeApp} = require('firebase-admin/app');
const {getFunctions} = require('firebase-admin/functions');
const [projectId, queueId] = process.argv.slice(2);

(async () => {
  const app = initializeApp({projectId});
  const queue = getFunctions(app).taskQueue(queueId);
  await queue.enqueue('plain');
  const scheduleTime = new Date(Date.now() + 3600 * 1000);
  await queue.enqueue({from: 'node'}, {id: 'node-kept', scheduleTime, dispatchDeadlineSeconds: 60, headers: {'X-Node': '1'}});
  await queue.enqueue({}, {id: 'node-gone'});
  await queue.delete('node-gone');
  await queue.delete('never-existed'); // the SDK ignores a 404
  console.log(`node firebase ok ${queueId}`);
})().catch((error) => { console.error(error); process.exit(1); });
