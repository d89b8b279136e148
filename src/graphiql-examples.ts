// The operations GraphiQL opens with. test/demo.test.ts validates each against the schema.
export const GRAPHIQL_EXAMPLES = `# Welcome to Conveyor. Run these one at a time: the ▶ button asks which operation.
#
# The seed's content_pipeline: research.analyze_market, then media.create_media draws a PNG chart.
#  1. ContentPipeline makes a workflow from the template; copy its workflow id.
#  2. Execute starts a run. Put the id in the Variables pane below: { "workflowId": "wf_..." }
#     and copy the run id it returns.
#  3. Watch streams the run's events live (add "runId": "run_..." to the variables): steps
#     starting, progress of the chart, artifacts stored, RUN_SUCCEEDED.
#  4. Artifacts lists the files the run made; open http://127.0.0.1:4000 + url to download one.

mutation ContentPipeline {
  createWorkflowFromTemplate(input: { template: "content_pipeline", params: { symbol: "BTC" } }) {
    __typename
    ... on CreateWorkflowSuccess { workflow { id name version definition } }
    ... on Error { message }
  }
}

mutation Execute($workflowId: ID!) {
  executeWorkflow(input: { workflowId: $workflowId }) {
    __typename
    ... on ExecuteWorkflowSuccess { run { id status } }
    ... on ValidationError { message issues { path message } }
    ... on Error { message }
  }
}

subscription Watch($runId: ID!) {
  runEvents(runId: $runId) { cursor type stepId status attempt payload }
}

query Artifacts($runId: ID!) {
  run(id: $runId) {
    status
    artifacts { name mimeType size url }
    steps { stepId status output }
  }
}

# More: media_bundle runs a chart (PNG), an animated chart (GIF) and a research brief in parallel
# after the analysis, then a report (Markdown and HTML). Samples: BTC, ETH, SOL.
mutation MediaBundle {
  createWorkflowFromTemplate(input: { template: "media_bundle", params: { symbol: "ETH" } }) {
    __typename
    ... on CreateWorkflowSuccess { workflow { id name version } }
    ... on Error { message }
  }
}

query Factories {
  factories { name description actions { name description inputSchema } }
  templates(first: 20) { edges { node { name version definition } } }
}

# Your own workflow: steps pass data with {{ }} expressions.
mutation CreateWorkflow {
  createWorkflow(input: {
    name: "hello"
    definition: {
      steps: [
        { id: "first", factory: "control", action: "noop", params: { greeting: "hello" } }
        { id: "second", factory: "control", action: "noop", params: { echo: "{{ steps.first.output.greeting }} world" } }
      ]
    }
  }) {
    __typename
    ... on CreateWorkflowSuccess { workflow { id name version } }
    ... on ValidationError { message issues { path message } }
  }
}

query Runs {
  runs(first: 20) { edges { node { id status workflow { name } steps { stepId status attempts } artifacts { name url } } } }
}
`
