// An authenticated tasksd over TLS: @google-cloud/tasks given a service account key file,
// over gRPC and over its REST fallback. The CA of the server's certificate is trusted.
const {CloudTasksClient} = require('@google-cloud/tasks');
const [grpcPort, httpPort, keyFilename, caFile, queueId] = process.argv.slice(2);

async function run(name, client) {
  const parent = 'projects/auth-project/locations/us-central1';
  const [queue] = await client.createQueue({parent, queue: {name: `${parent}/queues/${queueId}-${name}`}});
  const [task] = await client.createTask({parent: queue.name, task: {httpRequest: {url: 'https://example.com/node'}}});
  console.log(`${name} ok ${queue.name} ${task.name}`);
}

async function refused(name, client) {
  try {
    await client.getQueue({name: 'projects/auth-project/locations/us-central1/queues/none'});
  } catch (error) {
    console.log(`${name} refused ${error.code}`);
    return;
  }
  throw new Error(`${name}: a client without credentials was let in`);
}

(async () => {
  // Without TLS (caFile "-"), only the REST fallback: gRPC sends call credentials over TLS only.
  const protocol = caFile === '-' ? 'http' : 'https';
  await run('rest', new CloudTasksClient({apiEndpoint: '127.0.0.1', port: Number(httpPort), keyFilename, fallback: true, protocol}));
  await refused('anonymous', new CloudTasksClient({apiEndpoint: '127.0.0.1', port: Number(httpPort), fallback: true, protocol,
    authClient: {getRequestHeaders: async () => new Headers(), fetch: (url, options) => fetch(url, options)}}));
  if (caFile !== '-') {
    // Given sslCreds, the client sends no call credentials: the CA comes from
    // GRPC_DEFAULT_SSL_ROOTS_FILE_PATH instead (set by the test).
    await run('grpc', new CloudTasksClient({apiEndpoint: '127.0.0.1', port: Number(grpcPort), keyFilename}));
  }
})().catch((error) => { console.error(error); process.exit(1); });
