import { Foundation1764140000000 } from './1764140000000-Foundation';
import { WritePathIndexes1764900000000 } from './1764900000000-WritePathIndexes';
import { FeatureFlags1796058057502 } from './1796058057502-FeatureFlags';
import { RolloutMetrics1796060284731 } from './1796060284731-RolloutMetrics';
import { ProviderIdentity1796070000000 } from './1796070000000-ProviderIdentity';
import { SemanticMemory1796100000000 } from './1796100000000-SemanticMemory';
import { AgentSettings1796110000000 } from './1796110000000-AgentSettings';
import { CitusKeys1796120000000 } from './1796120000000-CitusKeys';

/** Every migration, in order. Never edit one that has landed: add a new one. */
export const MIGRATIONS = [
  Foundation1764140000000,
  WritePathIndexes1764900000000,
  FeatureFlags1796058057502,
  RolloutMetrics1796060284731,
  ProviderIdentity1796070000000,
  SemanticMemory1796100000000,
  AgentSettings1796110000000,
  CitusKeys1796120000000,
];
