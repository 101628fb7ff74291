/**
 * One clear sentence for the network and TLS failures every sink meets, instead of an OpenSSL or
 * libuv string; anything not recognised keeps its own message.
 */
const RULES: Array<[RegExp, string]> = [
  [/certificate required|alert number 116/i, 'the server requires a client certificate (set tls.cert and tls.key)'],
  [/bad certificate|alert number 42|unknown ca|alert number 48/i, 'the server refused the client certificate'],
  [
    /self[- ]signed certificate|unable to verify the first certificate|unable to get (local )?issuer certificate|UNABLE_TO_GET_ISSUER_CERT|DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT_IN_CHAIN/i,
    "the server's certificate is not trusted (set tls.ca to the CA that signed it)",
  ],
  [/ERR_TLS_CERT_ALTNAME_INVALID|does not match certificate's altnames|Hostname\/IP does not match/i, "the server's certificate is for another host name (tls.servername)"],
  [/certificate has expired|CERT_HAS_EXPIRED/i, "the server's certificate has expired"],
  [/wrong version number|packet length too long|WRONG_VERSION_NUMBER/i, 'TLS was expected but the server speaks plain TCP (or the other way round)'],
  [/ECONNREFUSED|CONNECTION_REFUSED/, 'connection refused (nothing listens there)'],
  [/ENOTFOUND|EAI_AGAIN/, 'host name not found'],
  [/ETIMEDOUT|ENETUNREACH|EHOSTUNREACH/, 'the host is unreachable'],
  [/ECONNRESET/, 'the connection was reset by the peer'],
  [/Not authorized|Bad username or password|ACCESS_REFUSED|Authorization Violation|authentication/i, 'the server refused the credentials'],
];

export function describeNetworkError(err: unknown): string {
  const text = err instanceof Error ? `${(err as NodeJS.ErrnoException).code ?? ''} ${err.message}` : String(err);
  for (const [re, sentence] of RULES) if (re.test(text)) return sentence;
  return err instanceof Error ? err.message : String(err);
}
