/**
 * Credentials that travel inside text: the user-info of a URL (`mqtts://user:PASSWORD@host`) and the
 * keys of an Azure connection string or SAS token. `scrubCredentials` replaces them wherever text
 * about a peer is reported (an uplink's `lastError` and status, log lines, echoed config values), so
 * an error message never carries the password of the URL it is about.
 *
 * The user name of a URL is kept (it helps to tell which account failed); only the password part
 * is replaced. Text without `@` or `=` is returned as is, without running a regular expression.
 */

export const REDACTED = '(redacted)';

// scheme://user:password@ — the password may hold anything but "@", "/" and white space.
const URL_USERINFO = /\b([a-z][a-z0-9+.-]*:\/\/[^\s/:@]*):[^\s/@]*@/gi;
// Azure / storage connection strings and SAS tokens: Key=VALUE up to ";", "&" or white space.
const KEYED = /\b(SharedAccessKey|SharedAccessSignature|AccountKey|sig|password|pwd)=[^;&\s"]+/gi;

export function scrubCredentials(text: string): string {
  let out = text;
  if (out.includes('@')) out = out.replace(URL_USERINFO, `$1:${REDACTED}@`);
  if (out.includes('=')) out = out.replace(KEYED, `$1=${REDACTED}`);
  return out;
}
