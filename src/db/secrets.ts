/**
 * Secrets generated once into the data directory for the zero-setup default
 * (embedded Postgres password, JWT secret). File mode 0600.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

export interface DataDirSecrets {
  pgPassword: string;
  jwtSecret: string;
}

/** Reads `<dataDir>/secrets.json`, creating it (and the directory) with fresh random values if absent. */
export function loadOrCreateSecrets(dataDir: string): DataDirSecrets {
  fs.mkdirSync(dataDir, { recursive: true });
  const file = path.join(dataDir, 'secrets.json');
  try {
    const parsed = JSON.parse(fs.readFileSync(file, 'utf8')) as Partial<DataDirSecrets>;
    if (typeof parsed.pgPassword === 'string' && typeof parsed.jwtSecret === 'string') {
      return { pgPassword: parsed.pgPassword, jwtSecret: parsed.jwtSecret };
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const secrets: DataDirSecrets = {
    pgPassword: randomBytes(24).toString('base64url'),
    jwtSecret: randomBytes(48).toString('base64url'),
  };
  // 'wx' fails if another process created it meanwhile: then read theirs.
  try {
    fs.writeFileSync(file, JSON.stringify(secrets, null, 2), { mode: 0o600, flag: 'wx' });
    return secrets;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return loadOrCreateSecrets(dataDir);
    throw err;
  }
}
