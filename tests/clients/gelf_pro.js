// Sends numbered messages through gelf-pro (npm), the Node GELF client.
// usage: node gelf_pro.js ADAPTER HOST PORT COUNT PAD [CA]
//   ADAPTER  udp (deflate, chunked beyond 1388 bytes) | tcp | tcp-tls (one connection per message)
// Message i is "event <i> <pad>" with the fields seq=i and container_name=gelf-pro-<ADAPTER>.
'use strict';
const fs = require('fs');
const [adapter, host, port, count, pad, ca] = process.argv.slice(2);
const gelf = require('gelf-pro');
const options = { host, port: Number(port), timeout: 5000 };
if (adapter === 'udp') options.protocol = 'udp4';
if (ca) { options.ca = [fs.readFileSync(ca)]; options.servername = 'localhost'; }
gelf.setConfig({
  adapterName: adapter,
  adapterOptions: options,
  fields: { container_name: 'gelf-pro-' + adapter },
});
let seed = 7;
function rnd() { seed = (seed * 1103515245 + 12345) % 2147483648; return seed; }
const alphabet = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
async function main() {
  for (let i = 0; i < Number(count); i++) {
    let text = '';
    for (let k = 0; k < Number(pad); k++) text += alphabet[rnd() % alphabet.length];
    await new Promise((resolve, reject) => {
      gelf.info('event ' + i + ' ' + text, { seq: i }, (err) => (err ? reject(err) : resolve()));
    });
  }
}
main().then(() => process.exit(0), (err) => { console.error(String(err)); process.exit(1); });
