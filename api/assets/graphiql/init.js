// FineTune Lab's GraphiQL: every script comes from this server, so the page
// works with no network. Put your project key in the Headers tab as
// {"Authorization": "Bearer ftl_..."}; GraphiQL sends the headers with each
// request and in the WebSocket's connection_init, where subscriptions read it.
(function () {
  var here = new URL("/graphql", window.location.href);
  var ws = new URL("/graphql", window.location.href);
  ws.protocol = here.protocol === "https:" ? "wss:" : "ws:";
  var fetcher = GraphiQL.createFetcher({
    url: here.toString(),
    subscriptionUrl: ws.toString(),
  });
  ReactDOM.createRoot(document.getElementById("graphiql")).render(
    React.createElement(GraphiQL, {
      fetcher: fetcher,
      defaultHeaders: '{\n  "Authorization": "Bearer <your project key>"\n}',
      defaultEditorToolsVisibility: true,
    })
  );
})();
