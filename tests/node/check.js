// Creates a queue and an HTTP task through @google-cloud/tasks: gRPC, then the REST fallback.
const {CloudTasksClient} = require('@google-cloud/tasks');
const grpc = require('@grpc/grpc-js');
const [grpcPort, httpPort, queueId] = process.argv.slice(2);

async function run(name, client) {
  const parent = 'projects/node-check/locations/us-central1';
  const [queue] = await client.createQueue({parent, queue: {name: `${parent}/queues/${queueId}-${name}`}});
  const [task] = await client.createTask({parent: queue.name, task: {httpRequest: {url: 'https://example.com/node', httpMethod: 'POST'}}});
  const [got] = await client.getTask({name: task.name});
  if (got.name !== task.name) throw new Error(`${name}: got ${got.name}`);
  console.log(`${name} ok ${queue.name} ${task.name}`);
}

(async () => {
  await run('grpc', new CloudTasksClient({apiEndpoint: '127.0.0.1', port: Number(grpcPort), sslCreds: grpc.credentials.createInsecure()}));
  await run('rest', new CloudTasksClient({apiEndpoint: '127.0.0.1', port: Number(httpPort), protocol: 'http', fallback: true,
    authClient: {getRequestHeaders: async () => new Headers(), fetch: (url, options) => fetch(url, options)}}));
})().catch((error) => { console.error(error); process.exit(1); });
