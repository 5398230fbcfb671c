// Signs Connect tokens with Atlassian's own atlassian-jwt library, so the Go service is
// tested against an implementation nobody on this project wrote.
//
// Input (stdin): a JSON array of requests; output (stdout): a JSON array of tokens.
//   {"kind":"install","privateKeyPem":"…","kid":"…","alg":"RS256","claims":{…},"qshFor":{"method":"POST","url":"/connect/installed"}}
//   {"kind":"context","secret":"…","alg":"HS256","claims":{…},"qshFor":{"method":"GET","url":"/connect/report-dialog?a=b"}}
// When qshFor is set, the qsh claim is computed by atlassian-jwt from that method and URL.
'use strict';
const jwt = require('atlassian-jwt');

function sign(r) {
  const claims = Object.assign({}, r.claims);
  if (r.qshFor) {
    const req = jwt.fromMethodAndUrl(r.qshFor.method, r.qshFor.url);
    claims.qsh = jwt.createQueryStringHash(req, false, r.qshFor.baseUrl);
  }
  if (r.kind === 'install') {
    if (r.alg === 'HS256') {
      return jwt.encodeSymmetric(claims, r.secret || 'not-a-key', jwt.SymmetricAlgorithm.HS256);
    }
    const header = r.kid === undefined ? {} : { kid: r.kid };
    return jwt.encodeAsymmetric(claims, r.privateKeyPem, jwt.AsymmetricAlgorithm.RS256, header);
  }
  if (r.kind === 'context') {
    const alg = r.alg === 'HS512' ? jwt.SymmetricAlgorithm.HS512 : jwt.SymmetricAlgorithm.HS256;
    return jwt.encodeSymmetric(claims, r.secret, alg);
  }
  if (r.kind === 'qsh') {
    return jwt.createQueryStringHash(jwt.fromMethodAndUrl(r.qshFor.method, r.qshFor.url), false, r.qshFor.baseUrl);
  }
  throw new Error('unknown kind ' + r.kind);
}

let input = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (d) => { input += d; });
process.stdin.on('end', () => {
  const reqs = JSON.parse(input);
  process.stdout.write(JSON.stringify(reqs.map(sign)));
});
