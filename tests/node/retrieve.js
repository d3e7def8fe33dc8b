// Calls thoughtbank.v1.ThoughtTemplateService/Retrieve from Node.js, knowing only the .proto.
//
// Usage: node retrieve.js PROTO_FILE HOST:PORT QUERY K
// Prints one JSON object: the hits of QUERY, and the status of a request with an empty query.
"use strict";

const path = require("node:path");
const grpc = require("@grpc/grpc-js");
const protoLoader = require("@grpc/proto-loader");

const [protoFile, address, query, k] = process.argv.slice(2);
const definition = protoLoader.loadSync(path.resolve(protoFile), {
  keepCase: true,
  longs: String,
  defaults: true,
});
const { ThoughtTemplateService } = grpc.loadPackageDefinition(definition).thoughtbank.v1;
const client = new ThoughtTemplateService(address, grpc.credentials.createInsecure());

function retrieve(request) {
  const deadline = new Date(Date.now() + 30_000);
  return new Promise((resolve) => {
    client.Retrieve(request, { deadline }, (error, reply) => resolve({ error, reply }));
  });
}

async function main() {
  const found = await retrieve({ query, k: Number(k) });
  if (found.error) {
    throw found.error;
  }
  const rejected = await retrieve({ query: "", k: 1 });
  const out = {
    index_version: found.reply.index_version,
    hits: found.reply.hits.map((hit) => ({
      id: hit.template.id,
      task: hit.template.task,
      score: hit.score,
      source_models: hit.template.source_models,
    })),
    empty_query: [grpc.status[rejected.error.code], rejected.error.details],
  };
  process.stdout.write(`${JSON.stringify(out)}\n`);
  client.close();
}

main().catch((error) => {
  process.stderr.write(`${error.stack || error}\n`);
  process.exit(1);
});
