// The example configuration `npm start` uses: the seed's research factory and its templates.
import { defineConfig } from '../src/index.ts'
import { researchFactory } from './factories/research.ts'

export default defineConfig({
  factories: { research: researchFactory },
  templates: {
    market_research_pipeline: {
      description: 'Analyse a symbol, then write a research brief from the analysis.',
      steps: [
        { factory: 'research', action: 'analyze_market' },
        { factory: 'research', action: 'initiate_research' },
      ],
      factories: ['research'],
      parallel: false,
    },
  },
})
