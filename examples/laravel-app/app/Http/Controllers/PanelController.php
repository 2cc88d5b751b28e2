<?php

namespace App\Http\Controllers;

use App\Release;
use Illuminate\Routing\Controller;
use Illuminate\Support\Facades\DB;
use Throwable;

class PanelController extends Controller
{
    /** The panel's page: its name, the live release, and a row read from its own database. */
    public function show()
    {
        return view('panel', [
            'panel' => config('app.name'),
            'release' => Release::id(),
            'database' => DB::connection()->getDatabaseName(),
            'note' => DB::table('panel_notes')->orderBy('id')->value('body'),
        ]);
    }

    /** Health check for deploys and the proxy: 200 only when the database answers. */
    public function up()
    {
        try {
            DB::select('SELECT 1');
        } catch (Throwable $e) {
            return response("database unavailable\n", 503)->header('Content-Type', 'text/plain');
        }

        return response("ok\n", 200)->header('Content-Type', 'text/plain');
    }
}
