// The operations GraphiQL opens with.
export const GRAPHIQL_EXAMPLES = `# Welcome to Conveyor. Run these one at a time (the ▶ button picks the operation).

query Factories {
  factories { name description actions { name description inputSchema } }
}

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

mutation Execute($workflowId: ID!) {
  executeWorkflow(input: { workflowId: $workflowId }) {
    __typename
    ... on ExecuteWorkflowSuccess { run { id status } }
    ... on Error { message }
  }
}

subscription Watch($runId: ID!) {
  runEvents(runId: $runId) { cursor type stepId status attempt payload }
}

query Runs {
  runs(first: 20) { edges { node { id status workflow { name } steps { stepId status attempts } } } }
}
`
